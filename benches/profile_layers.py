#!/usr/bin/env python3
"""Per-layer profiles of one network, qtensor's and PyTorch's side by side.

    python3 benches/profile_layers.py --bench-dir DIR --model resnet18
        [--batch 1] [--threads 1] [--reps 20] [--engine x86] [--isa avx2] [--top 40]

qtensor's side is `qtensor bench --profile model/M/bB --json` (the
Profiling dispatch layer: the time of every op under the layer it was
called from). PyTorch's side is torch.profiler over the frozen TorchScript
model that compare_peers.py times, built by DIR/models/torch_models.py
with the engine named. TorchScript's ops carry no module names, so the
eager model runs once first and records which layer calls each conv,
linear, pool, add, mul, cat and (de)quantize, in order; the frozen model's
top-level ops of each kind are named in that order. A kind whose counts
differ (an op PyTorch fused away) is reported as unmatched, never
guessed. The two sides name their layers alike (`features.1.conv.0.0`,
`layer1.0.conv1`), so the rows join by name; a layer only one side has is
listed with a dash on the other. Ratios are PyTorch / qtensor: above 1
means qtensor's layer is faster. The totals are every top-level op on
each side.

--isa avx2 caps both sides to AVX2, as compare_peers.py does.
Build first with `cargo build --release`.
"""
import argparse
import json
import os
import subprocess
import sys

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--bench-dir", required=True, help="the folder with models/torch_models.py")
ap.add_argument("--model", default="resnet18")
ap.add_argument("--batch", type=int, default=1)
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--reps", type=int, default=20)
ap.add_argument("--engine", default="x86", help="PyTorch's quantized engine: x86, fbgemm or onednn")
ap.add_argument("--isa", choices=["native", "avx2"], default="native")
ap.add_argument("--top", type=int, default=40, help="rows to print, slowest first by qtensor's time")
ap.add_argument("--torch-child", action="store_true", help=argparse.SUPPRESS)
args = ap.parse_args()

AVX2_TORCH = {"FBGEMM_ENABLE_INSTRUCTIONS": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
workload = f"model/{args.model}/b{args.batch}"


def qtensor_profile():
    """{layer: seconds per run}, summed over the ops called in each layer."""
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    exe = os.path.join(root, "target", "release", "qtensor")
    env = dict(os.environ, **({"QTENSOR_ISA": "avx2"} if args.isa == "avx2" else {}))
    cmd = [exe, "bench", "--profile", workload, "--json", "--threads", str(args.threads), "--reps", str(args.reps)]
    print("running:", " ".join(cmd), file=sys.stderr, flush=True)
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"qtensor failed: {out.stderr.strip()[-500:]}")
    # Per layer: its time, its op count and its slowest op (time, kernel).
    # A layer of several ops (a classifier head: pool, reshape, linear) is
    # named by the kernel of its slowest op and the count of the others.
    layers, op_counts, slowest = {}, {}, {}
    for line in out.stdout.splitlines():
        row = json.loads(line)
        name = row["layer"] or row["op"]
        layers[name] = layers.get(name, 0.0) + row["per_run_s"]
        op_counts[name] = op_counts.get(name, 0) + 1
        slowest[name] = max(slowest.get(name, (-1.0, "")), (row["per_run_s"], row["kernel"]))
    kernels = {}
    for name, (_, kernel) in slowest.items():
        others = op_counts[name] - 1
        kernels[name] = f"{kernel} (+{others} ops)" if others else kernel
    return layers, kernels

def torch_profile():
    """{layer: seconds per run} from torch.profiler, in a child process so
    that the AVX2 caps (read when PyTorch loads) apply."""
    env = dict(os.environ, **(AVX2_TORCH if args.isa == "avx2" else {}))
    cmd = [sys.executable, os.path.abspath(__file__), "--torch-child"] + sys.argv[1:]
    print("running: PyTorch's profile", file=sys.stderr, flush=True)
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"PyTorch's profile failed: {out.stderr.strip()[-500:]}")
    return json.loads(out.stdout)


# Which kind of op a layer is, from its module's class (eager) or its op's
# name (TorchScript): layers are matched in call order within a kind.
KINDS = [("conv", "conv"), ("linear", "linear"), ("max_pool", "maxpool"), ("avg_pool", "avgpool"),
         ("quantize_per_tensor", "quantize"), ("hardswish", "hardswish"), ("add", "add"), ("mul", "mul"),
         ("cat", "cat")]


def kind_of(text):
    text = text.rsplit("::", 1)[-1].lower()
    return next((kind for key, kind in KINDS if key in text or kind in text), None)


def torch_child():
    sys.path.insert(0, os.path.join(os.path.abspath(args.bench_dir), "models"))
    import torch
    import torch_models

    torch.set_num_threads(args.threads)
    model, side = torch_models.build(args.model, args.engine)
    x = torch.randn(args.batch, 3, side, side, generator=torch.Generator().manual_seed(2))
    calls = []  # (layer, kind) in the order the eager model runs them

    def recorded(fn, name, kind):
        def wrapped(*a, **k):
            calls.append((name, kind))
            return fn(*a, **k)

        return wrapped

    for name, module in model.named_modules():
        if isinstance(module, torch.ao.nn.quantized.QFunctional):
            for op in ("add", "add_relu", "mul", "cat", "add_scalar", "mul_scalar"):
                setattr(module, op, recorded(getattr(module, op), name, kind_of(op)))
        elif name and not list(module.children()) and kind_of(type(module).__name__):
            module.forward = recorded(module.forward, name, kind_of(type(module).__name__))
    with torch.inference_mode():
        model(x)
        for module in model.modules():  # TorchScript compiles the classes' own methods
            for attr in ("forward", "add", "add_relu", "mul", "cat", "add_scalar", "mul_scalar"):
                module.__dict__.pop(attr, None)
        frozen = torch.jit.freeze(torch.jit.script(model))  # what compare_peers.py times
        for _ in range(3):
            frozen(x)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            for _ in range(args.reps):
                frozen(x)
    # The frozen model's top-level ops of each kind, in order, are the eager
    # model's layers of that kind, in order, once per run.
    top = [e for e in prof.events() if e.cpu_parent is None or e.cpu_parent.name == "forward"]
    ops = [e for e in top if e.name != "forward" and kind_of(e.name)]
    times, unmatched = {}, []
    for kind in sorted({k for _, k in calls}):
        layers = [n for n, k in calls if k == kind]
        events = [e for e in ops if kind_of(e.name) == kind]
        if len(events) != len(layers) * args.reps:
            unmatched.append(f"{kind}: {len(layers)} layers, {len(events) / args.reps:g} ops per run")
            continue
        for i, e in enumerate(events):
            layer = layers[i % len(layers)]
            times[layer] = times.get(layer, 0.0) + e.cpu_time_total / 1e6 / args.reps
    total = sum(e.cpu_time_total for e in top if e.name != "forward") / 1e6 / args.reps
    print(json.dumps({"layers": times, "unmatched": unmatched, "total": total}))


def us(seconds):
    return "-" if seconds is None else f"{seconds * 1e6:9.1f}"


def main():
    ours, kernels = qtensor_profile()
    torch_side = torch_profile()
    theirs = torch_side["layers"]
    print(f"\n{workload}, {args.threads} thread(s), {args.reps} runs, PyTorch engine {args.engine}, ISA {args.isa}")
    rows = sorted(set(ours) | set(theirs), key=lambda k: -ours.get(k, 0.0))[: args.top]
    # Columns as wide as their longest entry.
    lw = max([len("layers both name")] + [len(name) for name in rows])
    kw = max([len("kernel")] + [len(kernels.get(name, "-")) for name in rows])
    print(f"{'layer':<{lw}} {'kernel':<{kw}} {'qtensor µs':>10} {'PyTorch µs':>10} {'ratio':>6}")
    for name in rows:
        a, b = ours.get(name), theirs.get(name)
        ratio = f"{b / a:6.2f}" if a and b else "     -"
        print(f"{name:<{lw}} {kernels.get(name, '-'):<{kw}} {us(a):>10} {us(b):>10} {ratio}")
    a, b = sum(ours.values()), torch_side["total"]
    print(f"{'all ops':<{lw}} {'':<{kw}} {us(a):>10} {us(b):>10} {b / a:6.2f}")
    both = set(ours) & set(theirs)
    a, b = sum(ours[k] for k in both), sum(theirs[k] for k in both)
    if both:
        print(f"{'layers both name':<{lw}} {'':<{kw}} {us(a):>10} {us(b):>10} {b / a:6.2f}")
    for note in torch_side["unmatched"]:
        print(f"not matched by name (PyTorch's layer count differs): {note}")


if args.torch_child:
    torch_child()
else:
    main()
