"""Writes the golden cases of the float ops that TorchScript files of
dynamically quantized and FX-quantized models call between a dequantize
and a quantize: silu, mul, add, softmax, linear, matmul,
scaled_dot_product_attention, layer_norm, gelu, div with rounding modes,
to, zeros and the views unflatten, unsqueeze and squeeze; and
upsample_nearest2d.vec on quantized tensors.

    python3 tests/python/make_golden_float_ops.py tests/golden/cases

Every expected value is PyTorch 2.15's own output (one thread). Elementwise
products and sums are exact in f32 and compared exactly; ops that reduce
(softmax, products, norms) or use transcendental functions are compared
within a relative bound, since PyTorch's vectorized loops sum in another
order and its Sleef exp and erf round in the last bit.
"""
import json
import os
import sys
import warnings

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_golden_network_ops import qtensor  # noqa: E402

warnings.filterwarnings("ignore")
torch.set_num_threads(1)
torch.manual_seed(2027)
HEADER = {"format": "qtensor-conformance/1",
          "generated_by": f"PyTorch {torch.__version__} (1 thread)", "seed": 2027}
CLOSE = {"abs": 1e-6, "rel": 1e-5}


def enc(t):
    if t.is_quantized:
        return {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape), "qscheme": "per_tensor_affine",
                "scale": t.q_scale(), "zero_point": t.q_zero_point(),
                "int_repr": t.int_repr().contiguous().reshape(-1).tolist()}
    return {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape),
            "data": t.contiguous().reshape(-1).tolist()}


def arg(v):
    return enc(v) if isinstance(v, torch.Tensor) else v


class Group:
    def __init__(self, name):
        self.name, self.cases = name, []

    def ok(self, op, args, out, tolerance=None):
        self.cases.append({"id": f"{self.name}/{len(self.cases):03d}", "op": op, "args": [arg(a) for a in args],
                           "expect": enc(out), "tolerance": tolerance or {"int": 0}})

    def err(self, op, args, note):
        self.cases.append({"id": f"{self.name}/{len(self.cases):03d}", "op": op, "args": [arg(a) for a in args],
                           "expect_error": True, "note": note})

    def write(self, out_dir):
        with open(os.path.join(out_dir, f"{self.name}.json"), "w") as f:
            json.dump({**HEADER, "group": self.name, "cases": self.cases}, f)
        print(f"{self.name}: {len(self.cases)} cases")


def f(*shape, scale=1.0):
    return torch.randn(*shape) * scale


def elementwise(g):
    for shape in ([7], [3, 33], [2, 4, 5, 6], [1, 300]):
        x, y = f(*shape, scale=4), f(*shape)
        g.ok("silu", [x], torch.nn.functional.silu(x), CLOSE)
        g.ok("mul.Tensor", [x, y], torch.mul(x, y))
        g.ok("mul.Scalar", [x, 0.5], torch.mul(x, 0.5))
        g.ok("add.Tensor", [x, y, 1], torch.add(x, y))
        g.ok("add.Tensor", [x, y, 2.5], torch.add(x, y, alpha=2.5))
        g.ok("gelu", [x, "none"], torch.nn.functional.gelu(x), CLOSE)
        g.ok("gelu", [x, "tanh"], torch.nn.functional.gelu(x, approximate="tanh"), CLOSE)
        for mode in (None, "trunc", "floor"):
            g.ok("div.Tensor_mode", [x, y, mode], torch.div(x, y, rounding_mode=mode))
    # Broadcasting, and a 0-d float64 or int64 operand (PyTorch keeps float32).
    a, b = f(2, 1, 5), f(3, 1)
    g.ok("mul.Tensor", [a, b], torch.mul(a, b))
    g.ok("add.Tensor", [a, b, 1], torch.add(a, b))
    g.ok("mul.Tensor", [a, torch.tensor(0.25, dtype=torch.float64)], torch.mul(a, torch.tensor(0.25, dtype=torch.float64)))
    n, m = torch.tensor([-7, 7, -8, 9, 0]), torch.tensor([2, -2, 3, 4, 5])
    for mode in ("trunc", "floor"):
        g.ok("div.Tensor_mode", [n, m, mode], torch.div(n, m, rounding_mode=mode))
    g.ok("mul.Tensor", [torch.tensor(3), torch.tensor(-4)], torch.mul(torch.tensor(3), torch.tensor(-4)))
    g.err("div.Tensor_mode", [n, torch.tensor([1, 0, 1, 1, 1]), "trunc"], "an integer division by zero")
    g.err("div.Tensor_mode", [x, y, "round"], "an unknown rounding mode")
    g.err("mul.Tensor", [f(2, 3), f(4, 3)], "shapes that do not broadcast")
    g.err("silu", [qtensor([4])], "a quantized input")


def reductions(g):
    for shape, dim in (([4, 10], 1), ([4, 10], 0), ([2, 3, 17], -1), ([2, 5, 3, 3], 1), ([1, 1000], 1)):
        x = f(*shape, scale=3)
        g.ok("softmax.int", [x, dim, None], torch.softmax(x, dim), CLOSE)
    for shape, norm in (([4, 32], [32]), ([2, 3, 8], [8]), ([2, 3, 8], [3, 8])):
        x = f(*shape, scale=2) + 1
        w, b = f(*norm), f(*norm)
        g.ok("layer_norm", [x, norm, w, b, 1e-5, True], torch.nn.functional.layer_norm(x, norm, w, b), CLOSE)
        g.ok("layer_norm", [x, norm, None, None, 1e-3, True], torch.nn.functional.layer_norm(x, norm, eps=1e-3), CLOSE)
    g.err("layer_norm", [f(4, 5), [6], None, None, 1e-5, True], "a normalized shape that is not the input's end")
    g.err("softmax.int", [f(3), 2, None], "a dimension out of range")


def products(g):
    for m, k, n in ((1, 16, 8), (5, 32, 24), (7, 3, 1)):
        x, w, b = f(m, k), f(n, k), f(n)
        g.ok("linear", [x, w, b], torch.nn.functional.linear(x, w, b), CLOSE)
        g.ok("linear", [x, w, None], torch.nn.functional.linear(x, w), CLOSE)
    x = f(2, 3, 16)
    w = f(8, 16)
    g.ok("linear", [x, w, None], torch.nn.functional.linear(x, w), CLOSE)
    for a, b in ((f(4, 5), f(5, 6)), (f(3, 4, 5), f(3, 5, 2)), (f(2, 1, 4, 5), f(3, 5, 2)), (f(5), f(5, 3)), (f(4, 5), f(5))):
        g.ok("matmul", [a, b], torch.matmul(a, b), CLOSE)
    for batch, heads, lq, lk, e in ((1, 4, 5, 5, 8), (2, 2, 3, 7, 16)):
        q, k, v = f(batch, heads, lq, e), f(batch, heads, lk, e), f(batch, heads, lk, e)
        sdpa = torch.nn.functional.scaled_dot_product_attention
        g.ok("scaled_dot_product_attention", [q, k, v, None, 0.0, False, None, False], sdpa(q, k, v), CLOSE)
        g.ok("scaled_dot_product_attention", [q, k, v, None, 0.0, False, 0.5, False], sdpa(q, k, v, scale=0.5), CLOSE)
        if lq == lk:
            g.ok("scaled_dot_product_attention", [q, k, v, None, 0.0, True, None, False],
                 sdpa(q, k, v, is_causal=True), CLOSE)
        mask = f(lq, lk)
        g.ok("scaled_dot_product_attention", [q, k, v, mask, 0.0, False, None, False],
             sdpa(q, k, v, attn_mask=mask), CLOSE)
    g.err("linear", [f(2, 5), f(3, 4), None], "an input whose last size is not the weight's")
    g.err("matmul", [f(2, 3), f(4, 5)], "sizes that do not multiply")
    g.err("scaled_dot_product_attention", [f(1, 2, 3), f(1, 2, 3), f(1, 2, 3), None, 0.5, False, None, False],
          "dropout in inference")


def shapes_and_types(g):
    x = f(2, 12, 3)
    g.ok("unflatten.int", [x, 1, [3, -1]], torch.unflatten(x, 1, [3, -1]))
    g.ok("unsqueeze", [x, 0], torch.unsqueeze(x, 0))
    g.ok("unsqueeze", [x, -1], torch.unsqueeze(x, -1))
    y = f(2, 1, 3)
    g.ok("squeeze.dim", [y, 1], torch.squeeze(y, 1))
    g.ok("squeeze.dim", [y, 0], torch.squeeze(y, 0))
    z = f(3, 4, scale=100)
    g.ok("to.dtype", [z, "int64", False, False, None], z.to(torch.int64))
    i = torch.tensor([[1, -2], [300, 4]])
    g.ok("to.dtype", [i, "float32", False, False, None], i.to(torch.float32))
    g.ok("zeros", [[2, 3], None, None, None, None], torch.zeros(2, 3))
    g.ok("zeros", [[4], "int64", None, None, None], torch.zeros(4, dtype=torch.int64))
    g.err("unflatten.int", [x, 1, [5, -1]], "sizes that do not split the dimension")
    g.err("zeros", [[2, 3], "quint8", None, None, None], "a quantized dtype")


def leaky_relu(g):
    """quantized::leaky_relu on tie-dense inputs: every stored integer,
    past PyTorch's 128-value vector blocks, through many output qparams."""
    for dtype, lo, hi in (("quint8", 0, 255), ("qint8", -128, 127)):
        ints = np.concatenate([np.arange(lo, hi + 1)] * 2 + [np.arange(lo, lo + 37)])
        for _ in range(10):
            x = qtensor([len(ints)], dtype, ints=ints)
            slope = float(np.random.default_rng(len(g.cases)).uniform(0.01, 0.3))
            so = float(np.random.default_rng(len(g.cases) + 1).uniform(0.002, 0.05))
            zo = int(np.random.default_rng(len(g.cases) + 2).integers(lo, hi))
            g.ok("quantized::leaky_relu", [x, slope, False, so, zo], torch.ops.quantized.leaky_relu(x, slope, False, so, zo))
    x = qtensor([2, 3, 5, 7], "quint8").contiguous(memory_format=torch.channels_last)
    g.ok("quantized::leaky_relu", [x, 0.1, False, 0.02, 64], torch.ops.quantized.leaky_relu(x, 0.1, False, 0.02, 64))


def upsample(g):
    for shape, size, scales in (([1, 4, 5, 6], None, [2.0, 2.0]), ([2, 3, 8, 8], None, [0.5, 0.5]),
                                ([1, 2, 5, 7], [9, 13], None), ([1, 3, 6, 4], None, [1.5, 2.5])):
        x = qtensor(shape, "quint8")
        want = torch._C._nn.upsample_nearest2d(x, size, scales)
        g.ok("upsample_nearest2d.vec", [x, size, scales], want)
    g.err("upsample_nearest2d.vec", [qtensor([1, 1, 4, 4]), None, None], "neither a size nor scale factors")


if __name__ == "__main__":
    out_dir = sys.argv[1]
    g = Group("float_ops")
    elementwise(g)
    reductions(g)
    products(g)
    shapes_and_types(g)
    leaky_relu(g)
    upsample(g)
    g.write(out_dir)
