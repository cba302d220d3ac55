"""Writes a torch.save checkpoint with every kind of entry qtensor reads,
and a JSON file with the values the loader must return.

    python3 tests/python/make_torch_checkpoint.py DIR

writes DIR/ck.pt and DIR/ck.json.
"""
import json
import os
import sys

import torch
import warnings

warnings.filterwarnings("ignore")
torch.manual_seed(0)


def ints(t):
    return t.int_repr().flatten().tolist() if t.is_quantized else t.flatten().tolist()


def describe(t):
    d = {"dtype": str(t.dtype).replace("torch.", ""), "sizes": list(t.shape), "values": ints(t)}
    if t.is_quantized:
        if t.qscheme() == torch.per_tensor_affine:
            d["scale"], d["zero_point"] = t.q_scale(), t.q_zero_point()
        else:
            d["scales"] = t.q_per_channel_scales().tolist()
            d["zero_points"] = t.q_per_channel_zero_points().tolist()
            d["axis"] = t.q_per_channel_axis()
    return d


conv = torch.ao.nn.quantized.Conv2d(3, 4, 3)
w = torch.randn(4, 3, 3, 3)
conv.set_weight_bias(torch.quantize_per_channel(w, torch.rand(4) * 0.01 + 0.005, torch.zeros(4, dtype=torch.long), 0, torch.qint8), torch.randn(4))
conv.scale, conv.zero_point = 0.05, 3
lin = torch.ao.nn.quantized.Linear(5, 2)
lin.set_weight_bias(torch.quantize_per_tensor(torch.randn(2, 5), 0.02, 0, torch.qint8), torch.randn(2))
state = {}
for k, v in conv.state_dict().items():
    state["conv." + k] = v
for k, v in lin.state_dict().items():
    state["fc." + k] = v
x = torch.randn(4, 6)
state["float_view"] = x.t()[1:4]                    # a strided view of a bigger storage
state["shared_view"] = x[2]                         # the same storage again, at an offset
state["quint8"] = torch.quantize_per_tensor(torch.randn(2, 3), 0.1, 128, torch.quint8)
state["int64"] = torch.arange(5)
state["scalar"] = torch.tensor(2.5)
os.makedirs(sys.argv[1], exist_ok=True)
torch.save(state, os.path.join(sys.argv[1], "ck.pt"))

expected = {}
for k, v in state.items():
    if isinstance(v, torch.Tensor):
        expected[k] = describe(v.contiguous() if not v.is_quantized else v)
    elif isinstance(v, tuple):
        expected[k] = [describe(t) if t is not None else None for t in v]
    elif isinstance(v, torch.dtype):
        expected[k] = {"dtype_constant": str(v).replace("torch.", "")}
    else:
        expected[k] = {"value": v}
json.dump(expected, open(os.path.join(sys.argv[1], "ck.json"), "w"))
