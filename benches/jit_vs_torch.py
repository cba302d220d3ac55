"""Frozen TorchScript files run by `qtensor run` against `torch.jit.load`,
back to back on one machine, one row per file:

    python3 tests/python/export_torchscript.py DIR          # the files and PyTorch's outputs
    cargo build --release
    python3 benches/jit_vs_torch.py DIR [--reps 20] [--threads 1] [--qtensor target/release/qtensor]

For each DIR/NAME.MODE.pt it takes the first input of NAME.MODE.io.safetensors
(batch 1), times PyTorch's forward (fbgemm engine, the median of --reps runs
after a warm-up) and `qtensor run --reps` (the same), and compares qtensor's
outputs with the ones PyTorch recorded at export. Prints a Markdown table:
the file, how it was saved, the share of quantized outputs identical to
PyTorch's integers and of float outputs identical to PyTorch's floats,
with the largest float difference relative to the largest output), both
medians and their ratio (PyTorch / qtensor: above 1
means qtensor is faster).
"""
import argparse
import glob
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import warnings

import numpy as np
import torch
from safetensors.numpy import load_file, save_file


def torch_median(path, x, reps):
    model = torch.jit.load(path)
    with torch.no_grad():
        model(x)
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def qtensor_run(binary, path, x, reps, threads, work):
    inp, out = os.path.join(work, "in.safetensors"), os.path.join(work, "out.safetensors")
    save_file({"input": x}, inp)
    run = subprocess.run([binary, "run", path, "--input", inp, "--out", out, "--reps", str(reps),
                          "--threads", str(threads)], capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"qtensor run {path} failed: {run.stderr.strip()}")
    ms = float(re.search(r" in ([0-9.]+) ms", run.stdout).group(1))
    return ms / 1e3, load_file(out)


def agreement(ours, recorded):
    """(identical output values, their count, worst float error relative to
    the largest float output). Quantized outputs compare their integers."""
    same = total = 0
    worst = 0.0
    for key, want in recorded.items():
        if not key.startswith("output.0") or key.endswith((".scale", ".zero_point")):
            continue
        if key.endswith(".int"):
            got = ours["output" + key[len("output.0"):-len(".int")]]
            same += int((got.astype(np.int64) == want.astype(np.int64)).sum())
            total += want.size
        else:
            got = ours["output" + key[len("output.0"):]]
            same += int((got == want).sum())
            total += want.size
            scale = max(float(np.abs(want).max()), 1e-30)
            worst = max(worst, float(np.abs(got.astype(np.float64) - want).max()) / scale)
    return same, total, worst


def main():
    p = argparse.ArgumentParser()
    p.add_argument("dir")
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--qtensor", default="target/release/qtensor")
    a = p.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(a.threads)
    torch.backends.quantized.engine = "fbgemm"
    print("| model | saved | identical to PyTorch | PyTorch ms | qtensor ms | PyTorch / qtensor |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as work:
        for path in sorted(glob.glob(os.path.join(a.dir, "*.pt"))):
            m = re.match(r"(.+)\.(script|trace)\.pt$", os.path.basename(path))
            if not m:
                continue
            recorded = load_file(path[:-len(".pt")] + ".io.safetensors")
            x = recorded["input.0"]
            t_torch = torch_median(path, torch.from_numpy(x), a.reps)
            t_ours, ours = qtensor_run(a.qtensor, path, x, a.reps, a.threads, work)
            same, total, worst = agreement(ours, recorded)
            share = f"{same}/{total} ({100 * same / total:.1f}%), max float error {worst:.1e}"
            print(f"| {m.group(1)} | {m.group(2)} | {share} | {t_torch * 1e3:.2f} | {t_ours * 1e3:.2f} "
                  f"| {t_torch / t_ours:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
