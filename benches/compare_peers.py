#!/usr/bin/env python3
"""Runs qtensor's workloads and the peers' (PyTorch, ONNX Runtime) back to
back on this machine and prints ratios: peer median / ours (above 1 means
qtensor is faster).

    python3 benches/compare_peers.py --bench-dir DIR [--threads N] [--reps R]
                                     [--isa avx2] [--filter S] [--no-models]

DIR holds the peers' scripts: torch_baseline.py and ort_baseline.py (the
op workloads) and models/torch_models.py (the networks, ResNet-18 and
MobileNetV2 at batch 1 and 8, the other torchvision networks at batch 1). A script that is missing, or whose package is
not installed, is skipped with a note. Build first with
`cargo build --release`.

--isa avx2 compares like with like on a CPU with more than AVX2: it caps
qtensor with QTENSOR_ISA=avx2 and PyTorch with FBGEMM_ENABLE_INSTRUCTIONS=AVX2,
ATEN_CPU_CAPABILITY=avx2 and ONEDNN_MAX_CPU_ISA=AVX2 (PyTorch's x86 engine
runs convolutions through oneDNN, which the first two do not cap). ONNX
Runtime has no such switch, so it is left out of an AVX2 run.
"""
import argparse
import json
import os
import subprocess
import sys

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--reps", type=int, default=9)
ap.add_argument("--bench-dir", required=True, help="the folder with the peers' scripts")
ap.add_argument("--isa", choices=["native", "avx2"], default="native")
ap.add_argument("--filter", default="", help="only workloads whose name contains this")
ap.add_argument("--no-models", action="store_true", help="skip the networks")
args = ap.parse_args()

AVX2_TORCH = {"FBGEMM_ENABLE_INSTRUCTIONS": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def run(cmd, env=None):
    print("running:", " ".join(cmd), file=sys.stderr, flush=True)
    full_env = dict(os.environ, **(env or {}))
    out = subprocess.run(cmd, capture_output=True, text=True, env=full_env)
    if out.returncode != 0:
        print(f"  skipped ({out.returncode}): {out.stderr.strip()[-300:]}", file=sys.stderr)
        return {}
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    return {r["workload"]: r for r in rows if args.filter in r["workload"]}


root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
ours_env = {"QTENSOR_ISA": "avx2"} if args.isa == "avx2" else {}
qtensor = os.path.join(root, "target", "release", "qtensor")
common = ["--threads", str(args.threads), "--reps", str(args.reps)]
ours = run([qtensor, "bench", "--json", "--filter", args.filter] + common, ours_env)
if args.no_models:
    ours = {w: r for w, r in ours.items() if not w.startswith("model/")}

torch_env = AVX2_TORCH if args.isa == "avx2" else {}
peers = {"PyTorch": {}, "ONNX Runtime": {}}
bench = os.path.abspath(args.bench_dir)
if os.path.exists(os.path.join(bench, "torch_baseline.py")):
    peers["PyTorch"].update(run([sys.executable, os.path.join(bench, "torch_baseline.py")] + common, torch_env))
models = os.path.join(bench, "models", "torch_models.py")
if os.path.exists(models) and not args.no_models and any(w.startswith("model/") for w in ours):
    every = "resnet18,resnet50,mobilenet_v2,mobilenet_v3_large,shufflenet_v2_x1_0,googlenet,inception_v3"
    for batch, names in ((1, every), (8, "resnet18,mobilenet_v2")):
        cmd = [sys.executable, models, "bench", "--models", names, "--batch", str(batch)]
        peers["PyTorch"].update(run(cmd + common, torch_env))
if args.isa == "native" and os.path.exists(os.path.join(bench, "ort_baseline.py")):
    peers["ONNX Runtime"].update(run([sys.executable, os.path.join(bench, "ort_baseline.py")] + common))
names = [n for n in peers if peers[n]]

label = f"{args.threads} thread{'s' if args.threads > 1 else ''}, {'AVX2 on both sides' if args.isa == 'avx2' else 'each at its best ISA'}"
header = " | ".join(f"{n} / ours" for n in names)
print(f"| workload ({label}) | {header} | best peer / ours (medians) | best peer / ours (best runs) |")
print("|---|" + "---|" * (len(names) + 2))
for w, r in ours.items():
    ratios, mins = [], []
    for n in names:
        p = peers[n].get(w)
        ratios.append(p["median_s"] / r["median_s"] if p else None)
        mins.append(p["min_s"] / r["min_s"] if p else None)
    cells = [f"{x:.2f}x" if x is not None else "-" for x in ratios]
    known = [x for x in ratios if x is not None]
    known_min = [x for x in mins if x is not None]
    best = f"{min(known):.2f}x" if known else "-"
    best_min = f"{min(known_min):.2f}x" if known_min else "-"
    print(f"| {w} | " + " | ".join(cells) + f" | {best} | {best_min} |")
