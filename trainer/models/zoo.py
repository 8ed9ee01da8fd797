"""Model zoo by name: CIFAR ResNets (option-A shortcut, akamaster's layout), CIFAR VGG, DenseNet-BC.

Every model maps normalised images to logits; ``Normalized`` wraps one so it takes [0, 1] pixels.
The ResNet keys match akamaster/pytorch_resnet_cifar10 exactly, so the shared ResNet-20 loads as is.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F


class _ShortcutA(nn.Module):
    """Parameter-free shortcut: subsample by 2 and zero-pad planes//4 channels on each side."""

    def __init__(self, planes: int):
        super().__init__()
        self.pad = planes // 4

    def forward(self, x):
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _ShortcutA(planes) if stride != 1 or in_planes != planes else nn.Identity()

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """He et al. 2016 CIFAR ResNet-(6n+2)."""

    def __init__(self, blocks: int, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, in_planes = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            stage = []
            for i in range(blocks):
                stage.append(BasicBlock(in_planes, planes, stride if i == 0 else 1))
                in_planes = planes
            layers.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3 = layers
        self.linear = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


_VGG_CFG = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


class CifarVGG(nn.Module):
    """VGG with BatchNorm for 32x32 inputs; ``width`` scales every layer's channels."""

    def __init__(self, depth: int, num_classes: int = 10, width: float = 1.0):
        super().__init__()
        layers: list[nn.Module] = []
        c = 3
        for v in _VGG_CFG[depth]:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                out = max(8, int(v * width))
                layers += [nn.Conv2d(c, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
                c = out
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class _DenseLayer(nn.Module):
    def __init__(self, c: int, growth: int):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(c), nn.Conv2d(c, 4 * growth, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(4 * growth), nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def forward(self, x):
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return torch.cat([x, out], 1)


class CifarDenseNetBC(nn.Module):
    """DenseNet-BC (Huang et al. 2017) for CIFAR: 3 dense blocks, bottlenecks, compression 0.5."""

    def __init__(self, depth: int = 40, growth: int = 12, num_classes: int = 10, reduction: float = 0.5):
        super().__init__()
        n = (depth - 4) // 6
        c = 2 * growth
        mods: list[nn.Module] = [nn.Conv2d(3, c, 3, padding=1, bias=False)]
        for block in range(3):
            for _ in range(n):
                mods.append(_DenseLayer(c, growth))
                c += growth
            if block < 2:
                out = int(c * reduction)
                mods += [nn.BatchNorm2d(c), nn.ReLU(inplace=True), nn.Conv2d(c, out, 1, bias=False), nn.AvgPool2d(2)]
                c = out
        mods += [nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*mods)
        self.linear = nn.Linear(c, num_classes)

    def forward(self, x):
        return self.linear(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1))


ARCHS: dict[str, Callable[..., nn.Module]] = {
    "resnet20": partial(CifarResNet, 3),
    "resnet32": partial(CifarResNet, 5),
    "resnet44": partial(CifarResNet, 7),
    "resnet56": partial(CifarResNet, 9),
    "vgg11": partial(CifarVGG, 11),
    "vgg16": partial(CifarVGG, 16),
    "vgg19": partial(CifarVGG, 19),
    "densenet": CifarDenseNetBC,
}


def parse_spec(spec: str) -> tuple[str, dict]:
    """``"vgg16:width=0.5"`` -> ("vgg16", {"width": 0.5}); options are ints or floats."""
    name, _, opts = spec.partition(":")
    kwargs = {}
    for item in filter(None, opts.split(",")):
        key, _, value = item.partition("=")
        kwargs[key] = int(value) if value.isdigit() else float(value)
    return name, kwargs


def build(spec: str, num_classes: int = 10) -> nn.Module:
    name, kwargs = parse_spec(spec)
    if name not in ARCHS:
        raise KeyError(f"unknown architecture {name!r}; known: {', '.join(ARCHS)}")
    return ARCHS[name](num_classes=num_classes, **kwargs)


class Normalized(nn.Module):
    """Takes [0, 1] pixels, applies the recorded mean/std, runs the bare model."""

    def __init__(self, model: nn.Module, mean, std):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x):
        return self.model((x - self.mean) / self.std)


class _BatchNormFrozenScale(nn.BatchNorm2d):
    """BatchNorm whose scale stays 1 (airbench: only the shift learns; running stats move fast)."""

    def __init__(self, channels: int, momentum: float = 0.6):
        super().__init__(channels, eps=1e-12, momentum=1 - momentum)
        self.weight.requires_grad_(False)


class _AirConv(nn.Conv2d):
    """3x3 'same' convolution initialised as a partial identity (dirac), as airbench does."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(c_in, c_out, 3, padding=1, bias=False)
        nn.init.dirac_(self.weight.data[: min(c_in, c_out)])


class _AirGroup(nn.Module):
    """conv -> maxpool -> BN -> GELU -> conv -> BN -> GELU: one of airbench's three conv groups."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv1, self.pool, self.norm1 = _AirConv(c_in, c_out), nn.MaxPool2d(2), _BatchNormFrozenScale(c_out)
        self.conv2, self.norm2 = _AirConv(c_out, c_out), _BatchNormFrozenScale(c_out)

    def forward(self, x):
        x = F.gelu(self.norm1(self.pool(self.conv1(x))))
        return F.gelu(self.norm2(self.conv2(x)))


class AirbenchNet(nn.Module):
    """The airbench94 network (Jordan 2024) for CIFAR-scale inputs, at any ``width``.

    A frozen 2x2 whitening convolution (its weights are the +/- eigenvectors of the training
    patches' covariance, set by :meth:`data_init`), three GELU conv groups, a 3x3 max-pool and a
    bias-free linear head scaled by 1/9. Width 1.0 is airbench94 (64/256/256 channels).
    """

    def __init__(self, num_classes: int = 10, width: float = 1.0):
        super().__init__()
        w1, w2, w3 = (max(8, int(c * width)) for c in (64, 256, 256))
        self.whiten = nn.Conv2d(3, 24, 2, padding=0, bias=True)
        self.whiten.weight.requires_grad_(False)
        self.groups = nn.Sequential(_AirGroup(24, w1), _AirGroup(w1, w2), _AirGroup(w2, w3))
        self.head = nn.Linear(w3, num_classes, bias=False)
        self.scale = 1 / 9
        self.register_buffer("data_initialised", torch.zeros((), dtype=torch.uint8))

    @torch.no_grad()
    def data_init(self, x: torch.Tensor, floor: float = 5e-4) -> None:
        """Whitening weights from the 2x2 patches of (normalised) training images ``x``."""
        c, (h, w) = x.shape[1], self.whiten.weight.shape[2:]
        patches = x.float().unfold(2, h, 1).unfold(3, w, 1).transpose(1, 3).reshape(-1, c * h * w)
        cov = patches.T @ patches / len(patches)
        values, vectors = torch.linalg.eigh(cov)
        values, vectors = values.flip(0), vectors.T.reshape(-1, c, h, w).flip(0)
        scaled = vectors / torch.sqrt(values.clamp_min(0) + floor).view(-1, 1, 1, 1)
        self.whiten.weight.copy_(torch.cat((scaled, -scaled)))
        self.whiten.bias.zero_()
        self.data_initialised.fill_(1)

    def forward(self, x):
        x = self.groups(F.gelu(self.whiten(x)))
        x = F.max_pool2d(x, 3).flatten(1)
        return self.head(x) * self.scale


ARCHS["airbench"] = AirbenchNet
