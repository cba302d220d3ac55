"""Compares `qtensor run`'s outputs with PyTorch's, for the files that
tests/python/export_torchscript.py wrote:

    python3 tests/python/compare_outputs.py OURS.safetensors NAME.MODE.io.safetensors INDEX

INDEX picks the input (`input.INDEX`) whose outputs OURS holds. Prints one
line: the share of quantized outputs equal to PyTorch's integers, and the
largest float difference relative to the largest PyTorch output.
"""
import sys

import numpy as np
from safetensors.numpy import load_file

ours, theirs, index = load_file(sys.argv[1]), load_file(sys.argv[2]), sys.argv[3]
prefix = f"output.{index}"
same = total = 0
worst = 0.0
found = 0
for key, want in theirs.items():
    if not key.startswith(prefix) or key.endswith((".scale", ".zero_point")):
        continue
    found += 1
    if key.endswith(".int"):
        name = "output" + key[len(prefix):-len(".int")]
        got = ours[name]
        assert got.shape == want.shape, f"{name}: shape {got.shape} vs {want.shape}"
        same += int((got.astype(np.int64) == want.astype(np.int64)).sum())
        total += want.size
    else:
        name = "output" + key[len(prefix):]
        got = ours[name]
        assert got.shape == want.shape, f"{name}: shape {got.shape} vs {want.shape}"
        scale = max(float(np.abs(want).max()), 1e-30)
        worst = max(worst, float(np.abs(got.astype(np.float64) - want).max()) / scale)
assert found, f"no outputs for input {index} in {sys.argv[2]}"
share = same / total if total else 1.0
print(f"identical {same}/{total} ({100 * share:.2f}%), float error {worst:.2e}")
sys.exit(0 if same == total and worst <= 1e-4 else 1)
