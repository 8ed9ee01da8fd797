"""The model zoo: the shared ResNet-20 loads exactly and is accurate; every architecture runs."""

from __future__ import annotations

import pytest

from conftest import SHARED_DATA, SHARED_VICTIM, needs_shared, needs_torch

pytestmark = needs_torch()


@needs_shared()
def test_shared_resnet20_loads_exactly_and_scores_80_percent(tmp_path):
    import torch

    from gfaudit.bundle.normalization import resolve
    from gfaudit_trainer.models import data, zoo
    from gfaudit_trainer.models.training import accuracy

    model = zoo.build("resnet20")
    sd = torch.load(SHARED_VICTIM, map_location="cpu", weights_only=True)
    result = model.load_state_dict(sd, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    test = data.load_split(SHARED_DATA, "test", tmp_path, per_class=100)
    assert len(test) == 1000
    acc = accuracy(zoo.Normalized(model, *resolve("imagenet")), test.images, test.labels, torch.device("cpu"))
    assert acc >= 0.80


@pytest.mark.parametrize(
    "spec",
    [
        "resnet20",
        "resnet32",
        "resnet44",
        "resnet56",
        "vgg16:width=0.25",
        "vgg19:width=0.25",
        "densenet:depth=16,growth=6",
    ],
)
def test_every_arch_maps_images_to_logits(spec):
    import torch

    from gfaudit_trainer.models import zoo

    model = zoo.build(spec, num_classes=7).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, 32, 32)).shape == (2, 7)


def test_unknown_arch_is_a_clear_error():
    from gfaudit_trainer.models import zoo

    with pytest.raises(KeyError, match="unknown architecture"):
        zoo.build("resnet7")


def test_export_onnx_parity(tmp_path, cli):
    import torch

    from gfaudit_trainer.models import zoo

    sd_path = tmp_path / "m.pt"
    torch.save(zoo.build("resnet20").state_dict(), sd_path)
    r = cli("export-onnx", sd_path, "--arch", "resnet20", "-o", tmp_path / "m.onnx")
    assert r.exit_code == 0, r.output
    import onnxruntime as ort

    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].shape[0] == "batch"  # dynamic batch
    r = cli("export-onnx", sd_path, "--arch", "vgg16", "-o", tmp_path / "bad.onnx")
    assert r.exit_code == 2 and "do not fit" in r.stderr
    assert not (tmp_path / "bad.onnx").exists()


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")  # the test itself writes TorchScript
@pytest.mark.parametrize("fmt", ["state_dict_pt", "safetensors", "torch_export_pt2", "torchscript"])
def test_victim_formats_load_to_the_same_function(tmp_path, fmt):
    import torch
    from safetensors.torch import save_file

    from gfaudit_trainer.models import victim, zoo

    torch.manual_seed(0)
    model = zoo.build("resnet20").eval()
    x = torch.rand(2, 3, 32, 32)
    if fmt == "state_dict_pt":
        path, arch = tmp_path / "m.pt", "resnet20"
        torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, path)  # DataParallel prefix too
    elif fmt == "safetensors":
        path, arch = tmp_path / "m.safetensors", "resnet20"
        save_file(model.state_dict(), str(path))
    elif fmt == "torch_export_pt2":
        path, arch = tmp_path / "m.pt2", None
        torch.export.save(torch.export.export(model, (x,)), str(path))
    else:
        path, arch = tmp_path / "m.ts", None
        torch.jit.save(torch.jit.trace(model, x), str(path))
    loaded = victim.load(path, arch)
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x), atol=1e-5)


def test_state_dict_without_arch_is_a_usage_error(tmp_path):
    import torch

    from gfaudit.errors import UsageError
    from gfaudit_trainer.models import victim, zoo

    path = tmp_path / "m.pt"
    torch.save(zoo.build("resnet20").state_dict(), path)
    with pytest.raises(UsageError, match="needs --arch"):
        victim.load(path, None)
