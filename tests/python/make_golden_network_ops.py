"""Writes the golden cases of the ops that torchvision's quantized networks
need beyond conv, linear, add and cat: the activations, mean,
batch_norm2d, upsample_nearest2d, channel_shuffle, flatten, avg_pool2d and
adaptive_avg_pool2d in both of PyTorch's layouts, and qint32 add, add_relu
and mul at large values.

    python3 tests/python/make_golden_network_ops.py tests/golden/cases [GROUP,...]

Every expected value is PyTorch 2.15's own output (x86 build, one thread).
Inputs are tie-dense (every stored integer, many scale pairs) and include
element counts past PyTorch's 128-element vector blocks, channels-last
inputs (`"memory_format": "channels_last"`) and bad calls that must fail.
"""
import json
import os
import sys
import warnings

import numpy as np
import torch

warnings.filterwarnings("ignore")
torch.set_num_threads(1)
torch.backends.quantized.engine = "fbgemm"
RNG = np.random.default_rng(2026)
HEADER = {"format": "qtensor-conformance/1",
          "generated_by": f"PyTorch {torch.__version__} (fbgemm engine, 1 thread)", "seed": 2026}
QDTYPES = {"quint8": (torch.quint8, 0, 255), "qint8": (torch.qint8, -128, 127), "qint32": (torch.qint32, -2**31, 2**31 - 1)}


def qtensor(shape, dtype="quint8", scale=None, zp=None, channels_last=False, ints=None):
    tdtype, lo, hi = QDTYPES[dtype]
    scale = float(RNG.uniform(0.005, 0.2)) if scale is None else scale
    if zp is None:
        zp = int(RNG.integers(lo, hi + 1)) if dtype != "qint32" else int(RNG.integers(-100, 100))
    n = int(np.prod(shape))
    if ints is None:
        span = (lo, hi + 1) if dtype != "qint32" else (-3000, 3000)
        ints = RNG.integers(*span, n)
    ints = np.asarray(ints, dtype=np.int64).reshape(shape)
    x = torch._make_per_tensor_quantized_tensor(torch.from_numpy(ints.astype({
        "quint8": np.uint8, "qint8": np.int8, "qint32": np.int32}[dtype])), scale, zp)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def enc(t):
    if t.is_quantized:
        d = {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape), "qscheme": "per_tensor_affine",
             "scale": t.q_scale(), "zero_point": t.q_zero_point(),
             "int_repr": t.int_repr().contiguous().reshape(-1).tolist()}
        if t.dim() == 4 and not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last):
            d["memory_format"] = "channels_last"
        return d
    return {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape),
            "data": t.contiguous().reshape(-1).tolist()}


def arg(v):
    if isinstance(v, torch.Tensor):
        return enc(v)
    if isinstance(v, float) and v != v:
        return "nan"
    return v


class Group:
    def __init__(self, name):
        self.name, self.cases = name, []

    def ok(self, op, args, out, note=None):
        case = {"id": f"{self.name}/{len(self.cases):03d}", "op": op, "args": [arg(a) for a in args],
                "expect": enc(out), "tolerance": {"int": 0}}
        if note:
            case["note"] = note
        self.cases.append(case)

    def err(self, op, args, note):
        self.cases.append({"id": f"{self.name}/{len(self.cases):03d}", "op": op, "args": [arg(a) for a in args],
                           "expect_error": True, "note": note})

    def write(self, out_dir):
        with open(os.path.join(out_dir, f"{self.name}.json"), "w") as f:
            json.dump({**HEADER, "group": self.name, "cases": self.cases}, f)
        print(f"{self.name}: {len(self.cases)} cases")


def shapes():
    yield [300]
    yield [5, 53]
    yield [1, 16, 9, 9]
    yield [2, 3, 7, 5]
    yield [1, 72, 1, 1]


def activations(out_dir):
    g = Group("activations")
    for dtype in ("quint8", "qint8"):
        for shape in shapes():
            for cl in (False, True) if len(shape) == 4 else (False,):
                x = qtensor(shape, dtype, channels_last=cl)
                so, zo = float(RNG.uniform(0.005, 0.1)), int(RNG.integers(QDTYPES[dtype][1], QDTYPES[dtype][2]))
                g.ok("quantized::hardswish", [x, so, zo], torch.ops.quantized.hardswish(x, so, zo))
                g.ok("hardsigmoid", [x], torch.nn.functional.hardsigmoid(x))
                g.ok("sigmoid", [x], torch.sigmoid(x))
        # Every stored integer through many scale pairs: the ties.
        lo, hi = QDTYPES[dtype][1:]
        for _ in range(12):
            x = qtensor([2 * 256 + 37], dtype, ints=np.concatenate([np.arange(lo, hi + 1)] * 2 + [np.arange(lo, lo + 37)]))
            so, zo = float(RNG.uniform(0.002, 0.05)), int(RNG.integers(lo, hi))
            g.ok("quantized::hardswish", [x, so, zo], torch.ops.quantized.hardswish(x, so, zo))
            g.ok("hardsigmoid", [x], torch.nn.functional.hardsigmoid(x))
            g.ok("sigmoid", [x], torch.sigmoid(x))
        for shape in ([7], [2, 3, 4, 5]):
            x = qtensor(shape, dtype)
            lo_v, hi_v = float(RNG.uniform(-3, 0)), float(RNG.uniform(0, 3))
            g.ok("hardtanh", [x, lo_v, hi_v], torch.nn.functional.hardtanh(x, lo_v, hi_v))
            g.ok("relu6", [x], torch.nn.functional.relu6(x))
            g.ok("clamp", [x, lo_v, hi_v], torch.clamp(x, lo_v, hi_v))
            g.ok("clamp", [x, lo_v, None], torch.clamp(x, min=lo_v))
            g.ok("clamp", [x, None, hi_v], torch.clamp(x, max=hi_v))
            g.ok("clamp", [x, hi_v, lo_v], torch.clamp(x, hi_v, lo_v))
    x = qtensor([40], "qint32")
    g.ok("quantized::hardswish", [x, 0.01, 3], torch.ops.quantized.hardswish(x, 0.01, 3))
    g.ok("hardsigmoid", [x], torch.nn.functional.hardsigmoid(x))
    g.ok("sigmoid", [x], torch.sigmoid(x))
    f = torch.randn(4)
    g.err("quantized::hardswish", [f, 0.1, 0], "a float input")
    g.err("quantized::hardswish", [qtensor([4]), 0.0, 0], "a zero output scale")
    g.err("quantized::hardswish", [qtensor([4]), 0.1, 300], "an output zero point outside quint8")
    g.err("sigmoid", [qtensor([3], "quint8").dequantize()], "a float input has no quantized sigmoid")
    g.err("clamp", [qtensor([3]), None, None], "no bound")
    g.err("hardtanh", [qtensor([3]), float("nan"), 1.0], "a NaN bound")
    g.write(out_dir)


def reductions(out_dir):
    g = Group("mean")
    for dtype in ("quint8", "qint8"):
        for shape, dims in (([2, 3, 5, 7], [2, 3]), ([2, 3, 5, 7], [-1]), ([4, 6, 9], [1, 2]), ([3, 300], [1]),
                            ([2, 3, 5, 7], [1, 2, 3])):
            for keep in (False, True):
                x = qtensor(shape, dtype)
                g.ok("mean", [x, dims, keep], x.mean(dims, keepdim=keep))
        for c in (1, 3, 5, 8, 12, 16, 31, 32, 40, 70, 1024):
            for hw in ((7, 7), (1, 6), (4, 5)) if c < 1024 else ((7, 7),):
                x = qtensor([1, c, *hw], dtype, channels_last=True)
                g.ok("mean", [x, [2, 3], False], x.mean([2, 3]), "channels-last: dequantize, f32 cascade sum")
        x = qtensor([2, 40, 3, 3], dtype, channels_last=True)
        g.ok("mean", [x, [2, 3], True], x.mean([2, 3], keepdim=True))
    g.err("mean", [qtensor([2, 3]), [1, 1], False], "a repeated dim")
    g.err("mean", [qtensor([2, 3]), [2], False], "a dim out of range")
    g.err("mean", [qtensor([2, 0]), [1], False], "an empty reduction")
    g.write(out_dir)


def batch_norm(out_dir):
    g = Group("batch_norm2d")
    for dtype in ("quint8", "qint8"):
        for c in (1, 3, 8, 33, 64, 70):
            x = qtensor([2, c, 3, 4], dtype, channels_last=bool(c % 2))
            w, b = torch.rand(c) + 0.5, torch.rand(c) - 0.5
            m, v = torch.rand(c) - 0.5, torch.rand(c) + 0.2
            so, zo = float(RNG.uniform(0.01, 0.2)), int(RNG.integers(QDTYPES[dtype][1], QDTYPES[dtype][2]))
            g.ok("quantized::batch_norm2d", [x, w, b, m, v, 1e-5, so, zo],
                 torch.ops.quantized.batch_norm2d(x, w, b, m, v, 1e-5, so, zo))
    c = 4
    x, p = qtensor([1, c, 2, 2]), torch.rand(c)
    g.err("quantized::batch_norm2d", [x, p, p, torch.rand(c + 1), p, 1e-5, 0.1, 0], "a mean of the wrong size")
    g.err("quantized::batch_norm2d", [qtensor([c, 2, 2]), p, p, p, p, 1e-5, 0.1, 0], "a 3-d input")
    g.err("quantized::batch_norm2d", [x, p, p, p, p, 1e-5, -1.0, 0], "a negative output scale")
    g.err("quantized::batch_norm2d", [x, p, p, p.double(), p, 1e-5, 0.1, 0], "a float64 mean")
    g.write(out_dir)


def resample(out_dir):
    g = Group("resample")
    for size, scales in (((10, 14), (None, None)), ((7, 7), (None, None)), ((13, 5), (None, None)),
                         ((15, 21), (3.0, 3.0)), ((6, 9), (1.3, 1.7)), ((3, 4), (None, None))):
        for cl in (False, True):
            x = qtensor([2, 3, 5, 7], channels_last=cl)
            g.ok("upsample_nearest2d", [x, list(size), *scales], torch._C._nn.upsample_nearest2d(x, size, *scales))
    x = qtensor([3, 4, 4])
    g.ok("upsample_nearest2d", [x, [8, 6], None, None], torch._C._nn.upsample_nearest2d(x[None], [8, 6])[0])
    g.err("upsample_nearest2d", [qtensor([1, 2, 3, 3]), [0, 4], None, None], "an empty output size")
    g.err("upsample_nearest2d", [qtensor([6]), [2, 2], None, None], "a 1-d input")
    for groups, shape in ((2, [1, 8, 3, 3]), (4, [2, 8, 2, 5]), (1, [1, 5, 2, 2])):
        for cl in (False, True) if len(shape) == 4 else (False,):
            x = qtensor(shape, channels_last=cl)
            g.ok("channel_shuffle", [x, groups], torch.nn.functional.channel_shuffle(x, groups))
    g.err("channel_shuffle", [qtensor([1, 6, 2, 2]), 4], "groups that do not divide the channels")
    g.err("channel_shuffle", [qtensor([1, 6, 2, 2]), 0], "zero groups")
    g.err("channel_shuffle", [qtensor([6, 4]), 2], "a 2-d input")
    for shape, s, e in (([2, 3, 4, 5], 1, -1), ([2, 3, 4, 5], 0, 2), ([2, 3], 0, 0), ([4], 0, -1)):
        x = qtensor(shape)
        g.ok("flatten", [x, s, e], torch.flatten(x, s, e))
    g.err("flatten", [qtensor([2, 3, 4]), 2, 1], "start_dim after end_dim")
    g.err("flatten", [qtensor([2, 3, 4]), 0, 3], "end_dim out of range")
    g.write(out_dir)


def avg_pool(out_dir):
    g = Group("avg_pool2d")
    for dtype in ("quint8", "qint8"):
        for k, s, p, cip, ceil, div in ((2, 1, 0, True, False, None), (2, 2, 1, False, True, None),
                                        (3, 1, 1, True, False, None), (3, 1, 1, False, False, None),
                                        (4, 2, 2, False, True, None), (3, 2, 1, True, True, 4),
                                        (2, 1, 1, False, False, 6)):
            for cl in (False, True):
                for c in (1, 5):
                    x = qtensor([2, c, 7, 6], dtype, channels_last=cl)
                    y = torch.nn.functional.avg_pool2d(x, k, s, p, ceil_mode=ceil, count_include_pad=cip,
                                                       divisor_override=div)
                    g.ok("avg_pool2d", [x, [k, k], [s, s], [p, p], ceil, cip, div], y,
                         "channels-last path" if x.is_contiguous(memory_format=torch.channels_last) else None)
    g.write(out_dir)


def arithmetic(out_dir):
    g = Group("add_mul_exact")
    for dtype in ("quint8", "qint8"):
        lo, hi = QDTYPES[dtype][1:]
        for _ in range(10):
            n = 2 * 256 + int(RNG.integers(1, 128))
            ia = np.concatenate([np.arange(lo, hi + 1), np.arange(lo, hi + 1)[::-1], RNG.integers(lo, hi + 1, n - 512)])
            ib = np.concatenate([RNG.permutation(np.arange(lo, hi + 1)), np.arange(lo, hi + 1), RNG.integers(lo, hi + 1, n - 512)])
            a, b = qtensor([n], dtype, ints=ia), qtensor([n], dtype, ints=ib)
            so, zo = float(RNG.uniform(0.002, 0.2)), int(RNG.integers(lo, hi))
            for op in ("add", "add_relu", "mul"):
                g.ok(f"quantized::{op}", [a, b, so, zo], getattr(torch.ops.quantized, op)(a, b, so, zo))
        for shape in ([1, 24, 7, 9], [2, 3, 5, 5]):
            a, b = qtensor(shape, dtype, channels_last=True), qtensor(shape, dtype, channels_last=True)
            so, zo = float(RNG.uniform(0.01, 0.2)), int(RNG.integers(lo, hi))
            for op in ("add", "add_relu", "mul"):
                g.ok(f"quantized::{op}", [a, b, so, zo], getattr(torch.ops.quantized, op)(a, b, so, zo))
        # The squeeze-excitation gate: [N, C, 1, 1] times [N, C, H, W].
        a, b = qtensor([1, 40, 1, 1], dtype), qtensor([1, 40, 6, 6], dtype, channels_last=True)
        g.ok("quantized::mul", [a, b, 0.02, 3], torch.ops.quantized.mul(a, b, 0.02, 3))
    g.write(out_dir)


def qint32_arithmetic(out_dir):
    """qint32 add, add_relu and mul over the whole int32 range: PyTorch adds
    the output zero point in f32 (fbgemm's Quantize), dequantizes with
    f32(q) - zero point, and multiplies in int32, so large values round
    where exact arithmetic would not."""
    global RNG
    RNG = np.random.default_rng(2032)  # its own seed: the same cases alone or after the others
    g = Group("qint32_arithmetic")
    edges = np.array([-2**31, -2**31 + 1, 2**31 - 1, 2**31 - 2, 2**24, 2**24 + 1, -2**24 - 3, 0, 1, -1])
    for trial in range(12):
        n = 2 * 32 + int(RNG.integers(1, 40))
        mag = [2**10, 2**15, 2**20, 2**24, 2**28, 2**31][trial % 6]
        ia = np.concatenate([edges, RNG.integers(-mag, mag, n - len(edges))]).clip(-2**31, 2**31 - 1)
        ib = np.concatenate([edges[::-1], RNG.integers(-mag, mag, n - len(edges))]).clip(-2**31, 2**31 - 1)
        zpa, zpb = int(RNG.integers(-300, 300)), int(RNG.integers(-300, 300))
        a = qtensor([n], "qint32", scale=float(RNG.uniform(1e-4, 0.5)), zp=zpa, ints=ia)
        b = qtensor([n], "qint32", scale=float(RNG.uniform(1e-4, 0.5)), zp=zpb, ints=ib)
        so, zo = float(RNG.uniform(1e-4, 0.7)), int(RNG.integers(-10**6, 10**6))
        for op in ("add", "add_relu"):
            g.ok(f"quantized::{op}", [a, b, so, zo], getattr(torch.ops.quantized, op)(a, b, so, zo))
        # mul: products of values below 2^15 (PyTorch's int32 product wraps beyond).
        sa, sb = qtensor([n], "qint32", zp=zpa, ints=RNG.integers(-2**15, 2**15, n)), qtensor([n], "qint32", zp=zpb, ints=RNG.integers(-2**15, 2**15, n))
        g.ok("quantized::mul", [sa, sb, so * 50, zo], torch.ops.quantized.mul(sa, sb, so * 50, zo))
    g.write(out_dir)


def adaptive_avg_pool(out_dir):
    """adaptive_avg_pool2d over both layouts, output sizes that divide the
    input and ones that do not (overlapping windows), tie-dense sums."""
    global RNG
    RNG = np.random.default_rng(2033)
    g = Group("adaptive_avg_pool2d")
    for dtype in ("quint8", "qint8"):
        for shape, out in (([1, 8, 7, 7], [1, 1]), ([2, 5, 9, 6], [4, 4]), ([1, 16, 14, 14], [5, 3]),
                           ([1, 3, 6, 10], [6, 10]), ([2, 40, 3, 5], [2, 2]), ([1, 72, 11, 13], [1, 1]),
                           ([1, 960, 7, 7], [1, 1]), ([3, 7, 15, 9], [7, 4])):
            for cl in (False, True):
                x = qtensor(shape, dtype, channels_last=cl)
                g.ok("adaptive_avg_pool2d", [x, out], torch.nn.functional.adaptive_avg_pool2d(x, out),
                     "channels-last path" if x.is_contiguous(memory_format=torch.channels_last) and shape[1] > 1 else None)
    g.write(out_dir)


if __name__ == "__main__":
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    makers = {f.__name__: f for f in (activations, reductions, batch_norm, resample, avg_pool, arithmetic,
                                       qint32_arithmetic, adaptive_avg_pool)}
    for name in sys.argv[2].split(",") if len(sys.argv) > 2 else makers:
        makers[name](out)
