"""Reads a file written by qtensor with Python's safetensors + numpy and
checks that every tensor and every quantization record is there.

Usage: python3 read_with_safetensors.py FILE.safetensors
"""
import json
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file


def main(path: str) -> int:
    tensors = load_file(path)
    with safe_open(path, framework="numpy") as f:
        metadata = f.metadata() or {}
    if metadata.get("format") != "qtensor/1":
        print(f"missing format marker in {metadata}")
        return 1
    quantized = {k[: -len(".__qtensor__")]: json.loads(v) for k, v in metadata.items() if k.endswith(".__qtensor__")}
    for name, q in sorted(quantized.items()):
        ints = tensors[name]
        want = {"quint8": np.uint8, "qint8": np.int8, "qint16": np.int16, "qint32": np.int32}[q["dtype"]]
        if ints.dtype != want:
            print(f"{name}: integers are {ints.dtype}, expected {want}")
            return 1
        if q["qscheme"] == "per_tensor_affine":
            real = (ints.astype(np.float64) - int(q["zero_point"])) * float(q["scale"])
        else:
            axis = int(q["axis"])
            scales = tensors[name + ".__scales__"]
            zps = tensors[name + ".__zero_points__"]
            shape = [1] * ints.ndim
            shape[axis] = -1
            real = (ints.astype(np.float64) - zps.reshape(shape)) * scales.reshape(shape)
        print(f"{name}: {q['dtype']} {q['qscheme']} shape={list(ints.shape)} dequantized[:4]={real.reshape(-1)[:4].tolist()}")
    plain = sorted(k for k in tensors if k not in quantized and not k.endswith("__"))
    for name in plain:
        print(f"{name}: {tensors[name].dtype} shape={list(tensors[name].shape)}")
    print(f"read {len(tensors)} tensors from {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
