"""Adds `-fbgemm-avx2` twins to the conv2d and linear golden cases whose
PyTorch expectation holds only where fbgemm has AVX-512 VNNI.

    python3 tests/python/make_golden_fbgemm_avx2.py tests/golden/cases

Those cases carry an `engines` list without `fbgemm-avx2`: on a CPU
without VNNI, fbgemm sums pairs of u8 x i8 products in int16 with
saturation, and their inputs saturate a pair. This script runs each one
through PyTorch 2.15's fbgemm capped to AVX2 (`FBGEMM_ENABLE_INSTRUCTIONS=
AVX2`, set before torch is imported, so any x86-64 CPU gives the AVX2
build's integers) and writes the result as a twin case for the
`fbgemm-avx2` engine, right after the case it copies. A twin whose
integers would equal the original's is not needed and not written;
existing twins are replaced, so running it twice changes nothing.
"""
import json
import os
import sys
import warnings

os.environ["FBGEMM_ENABLE_INSTRUCTIONS"] = "AVX2"

import numpy as np  # noqa: E402
import torch  # noqa: E402

warnings.filterwarnings("ignore")
torch.set_num_threads(1)
torch.backends.quantized.engine = "fbgemm"
SUFFIX = "-fbgemm-avx2"
NOTE = ("PyTorch 2.15's fbgemm capped to AVX2 (FBGEMM_ENABLE_INSTRUCTIONS=AVX2), as on a CPU without "
        "AVX-512 VNNI: its int16 pairs of products saturate here")
INTS = {"quint8": np.uint8, "qint8": np.int8}


def dec(a):
    """A case's tensor argument as a torch tensor; other arguments as they are."""
    if not isinstance(a, dict):
        return a
    if "int_repr" not in a:
        return torch.tensor(a["data"], dtype=getattr(torch, a["dtype"])).reshape(a["shape"])
    ints = torch.from_numpy(np.asarray(a["int_repr"], dtype=INTS[a["dtype"]]).reshape(a["shape"]))
    if a["qscheme"] == "per_tensor_affine":
        t = torch._make_per_tensor_quantized_tensor(ints, a["scale"], a["zero_point"])
    else:
        t = torch._make_per_channel_quantized_tensor(
            ints, torch.tensor(a["scales"], dtype=torch.float64), torch.tensor(a["zero_points"]), a["axis"])
    if a.get("memory_format") == "channels_last":
        t = t.contiguous(memory_format=torch.channels_last)
    return t


def run(case):
    """PyTorch's output of a quantized conv2d or linear case."""
    args = [dec(a) for a in case["args"]]
    name = case["op"].split("::")[1]
    op = getattr(torch.ops.quantized, name)
    if name.startswith("conv2d"):
        x, w, b, stride, padding, dilation, groups, scale, zp = args
        packed = torch.ops.quantized.conv2d_prepack(w, b, stride, padding, dilation, groups)
    else:
        x, w, b, scale, zp = args
        packed = torch.ops.quantized.linear_prepack(w, b)
    return op(x, packed, scale, zp)


def enc(t):
    d = {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape), "qscheme": "per_tensor_affine",
         "scale": t.q_scale(), "zero_point": t.q_zero_point(), "int_repr": t.int_repr().contiguous().reshape(-1).tolist()}
    if t.dim() == 4 and not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last):
        d["memory_format"] = "channels_last"
    return d


def twins(path):
    with open(path) as f:
        doc = json.load(f)
    cases, written = [], 0
    for case in doc["cases"]:
        if case["id"].endswith(SUFFIX):
            continue
        cases.append(case)
        engines = case.get("engines")
        if engines is None or "fbgemm-avx2" in engines or "-" in case["id"].split("/")[-1]:
            continue
        if "expect" not in case:
            continue
        out = enc(run(case))
        if out["int_repr"] == case["expect"]["int_repr"]:
            continue
        twin = {k: v for k, v in case.items() if k not in ("expect", "note", "engines")}
        twin.update(id=case["id"] + SUFFIX, engines=["fbgemm-avx2"], note=NOTE, expect=out)
        cases.append(twin)
        written += 1
    doc["cases"] = cases
    with open(path, "w") as f:
        json.dump(doc, f)
    print(f"{os.path.basename(path)}: {written} fbgemm-avx2 twins")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    for group in ("conv2d", "linear"):
        twins(os.path.join(sys.argv[1], f"{group}.json"))
