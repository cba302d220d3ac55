#!/usr/bin/env python3
"""Runs qtensor's standard workloads and the peers' (PyTorch, ONNX Runtime)
back to back on this machine and prints ratios: peer median / ours.

    python3 benches/compare_peers.py [--threads N] [--reps R] [--bench-dir DIR]

DIR holds torch_baseline.py and ort_baseline.py (default: ../shared/bench);
a peer whose package is missing is skipped with a note. Build first with
`cargo build --release`.
"""
import argparse
import json
import os
import subprocess
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--reps", type=int, default=9)
ap.add_argument("--bench-dir", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "bench"))
args = ap.parse_args()


def run(cmd):
    print("running:", " ".join(cmd), file=sys.stderr, flush=True)
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        print(f"  failed ({out.returncode}): {out.stderr.strip()[-300:]}", file=sys.stderr)
        return {}
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    return {r["workload"]: r for r in rows}


root = os.path.join(os.path.dirname(__file__), "..")
ours = run([os.path.join(root, "target", "release", "qtensor"), "bench", "--json", "--threads", str(args.threads), "--reps", str(args.reps)])
peers = {}
for name, script in [("PyTorch", "torch_baseline.py"), ("ONNX Runtime", "ort_baseline.py")]:
    path = os.path.join(args.bench_dir, script)
    if os.path.exists(path):
        peers[name] = run([sys.executable, path, "--threads", str(args.threads), "--reps", str(args.reps)])

names = list(peers)
header = " | ".join(f"{n} / ours" for n in names)
print(f"| workload ({args.threads} thread{'s' if args.threads > 1 else ''}) | {header} | best peer / ours (medians) | best peer / ours (best runs) |")
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
