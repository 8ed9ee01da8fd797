#!/usr/bin/env bash
# Rebuild fingerprints/resnet20-cifar10 from the shared victim (a ResNet-20 trained on the shared
# CIFAR-10 JPEG copy: one data world with the seeds and the pools) and that JPEG copy. The public
# akamaster ResNet-20 (trained elsewhere, on the lossless originals) joins as a reference model:
# a calibration negative, so never a suspect that judges this bundle.
# The private key lives OUTSIDE the repository (KEYDIR); only owner.pub is committed.
# Usage: KEYDIR=/secure/keys CACHE=/path/to/cache bash fingerprints/build-resnet20-cifar10.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
KEYDIR=${KEYDIR:?set KEYDIR to a folder outside the repository}
CACHE=${CACHE:-$HOME/.cache/gfaudit}
OUT=fingerprints/resnet20-cifar10
VICTIM=$SHARED/models/resnet20-cifar10-jpeg/resnet20.pt
DATA=$SHARED/data/cifar10-jpeg
REFS=$CACHE/references
mkdir -p "$REFS"
[ -f "$REFS/akamaster-resnet20.onnx" ] || gfaudit export-onnx "$SHARED/models/resnet20-cifar10-akamaster/resnet20.pt" \
  --arch resnet20 -o "$REFS/akamaster-resnet20.onnx"

[ -f "$KEYDIR/owner.key" ] || gfaudit keygen --out "$KEYDIR"
cp "$KEYDIR/owner.pub" "$OUT/owner.pub"
gfaudit train --victim "$VICTIM" --arch resnet20 --normalization imagenet --data "$DATA" --preset cpu \
  --key "$KEYDIR/owner.key" -o "$OUT/resnet20-cifar10.safetensors" --cache "$CACHE" --reference "$REFS"
# Demo suspects: three models of the cpu suspect library (pirates trained on D_a, which no pool model
# saw; an unrelated model trained independently on the whole training split, as public models are),
# built alone so the bundle ships before the whole library (the rest: `gfaudit library build` without
# --only, same folder, same seeds; benchmarks/run.py).
gfaudit library build --victim "$VICTIM" --arch resnet20 --normalization imagenet --data "$DATA" --preset cpu \
  -o "$CACHE/bench-cpu/library" --cache "$CACHE" --only prune-0.3,ftll,unrelated-airbench:width=0.5-2
mkdir -p "$OUT/suspects" && rm -f "$OUT"/suspects/*.onnx
cp "$CACHE/bench-cpu/library/prune-0.3.onnx" "$OUT/suspects/pruned-30pct.onnx"
cp "$CACHE/bench-cpu/library/ftll.onnx" "$OUT/suspects/finetuned-last-layer.onnx"
cp "$CACHE/bench-cpu/library/unrelated-airbench_width0.5-2.onnx" "$OUT/suspects/unrelated-airbench.onnx"
# The measured half of the bundle's README, read from its signed provenance.
python fingerprints/describe.py "$OUT/resnet20-cifar10.safetensors" --pubkey "$OUT/owner.pub" > "$OUT/measured.md"
