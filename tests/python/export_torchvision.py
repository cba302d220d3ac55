"""Exports torchvision's quantized classification networks for
`tests/pytorch_models.rs` and `qtensor model run`:

    python3 tests/python/export_torchvision.py DIR resnet18,mobilenet_v2 \
        [--engine fbgemm|x86] [--weights per_channel|per_tensor] [--range in|out]

For each network NAME it writes
- DIR/NAME.pt: `torch.save(model.state_dict())` of the fused, calibrated
  and converted model (the engine's qconfig, random weights from a fixed seed);
- DIR/NAME.io.safetensors: the float `input` [1, 3, H, W], PyTorch's
  quantized logits as `output_int` (uint8), and their qparams as
  `output_scale` (float64 [1]) and `output_zero_point` (int64 [1]); and
  the same for a second, non-square batch of 2 as `input2`,
  `output_int2`, `output_scale2` and `output_zero_point2`.

Options:
- `--engine`: the quantized engine PyTorch runs the converted model under
  (`torch.backends.quantized.engine`). Both convert the same state dict;
  under `x86` on a CPU with AVX-512 VNNI most convs run on oneDNN.
- `--weights per_tensor`: `torch.ao.quantization.default_qconfig`
  (per-tensor symmetric weights, MinMax observers) instead of the
  engine's default per-channel qconfig.
- `--range out`: the exported inputs are 2.5x the calibration images'
  scale and are left out of calibration, so activations leave their
  calibrated range (where fbgemm's int16 pair sums saturate). With
  `in` (the default) calibration includes them.
"""
import argparse
import os
import warnings

import numpy as np
import torch
import torchvision.models.quantization as tvq
from safetensors.numpy import save_file

warnings.filterwarnings("ignore")
SIDES = {"resnet18": 224, "resnet50": 224, "mobilenet_v2": 224, "mobilenet_v3_large": 224,
         "shufflenet_v2_x1_0": 224, "googlenet": 224, "inception_v3": 299}


def randomize_norms(model, side, g):
    """torchvision's initialization leaves batch norms at identity and
    classifier biases at zero, which can make every logit 0 (or, in deep
    networks, overflow them). Running statistics measured on random images
    keep every activation in range; random affine parameters and biases
    then give every layer real work."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for m in norms:
            m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.copy_(torch.rand(m.bias.shape, generator=g) * 0.4 - 0.1)
            m.reset_running_stats()
            m.momentum = None
        model.train()
        for _ in range(2):
            model(torch.randn(4, 3, side, side, generator=g))
        for m in model.modules():
            if isinstance(m, torch.nn.Linear) and m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    model.eval()


def export(name, out_dir, engine="fbgemm", weights="per_channel", in_range="in"):
    side = SIDES[name]
    torch.manual_seed(0)
    extra = {"aux_logits": False, "init_weights": True} if name in ("googlenet", "inception_v3") else {}
    model = getattr(tvq, name)(weights=None, quantize=False, **extra)
    randomize_norms(model, side, torch.Generator().manual_seed(2))
    # The engine active at conversion packs the weights (under x86, per
    # conv for oneDNN or fbgemm), and the one active at run time computes.
    torch.backends.quantized.engine = engine
    model.fuse_model()
    if weights == "per_tensor":
        model.qconfig = torch.ao.quantization.default_qconfig
    else:
        model.qconfig = torch.ao.quantization.get_default_qconfig(engine)
    torch.ao.quantization.prepare(model, inplace=True)
    g = torch.Generator().manual_seed(7)
    x = torch.randn(1, 3, side, side, generator=g)
    x2 = torch.randn(2, 3, side - 16, side + 16, generator=g)
    calibration = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(2, 3, side, side, generator=calibration))
        if in_range == "in":
            model(x)
            model(x2)
    torch.ao.quantization.convert(model, inplace=True)
    if in_range == "out":
        x, x2 = x * 2.5, x2 * 2.5
    # The logits are the output of the last quantized Linear, before the
    # dequantize stub.
    captured = {}
    last = [m for m in model.modules() if isinstance(m, torch.ao.nn.quantized.Linear)][-1]
    last.register_forward_hook(lambda m, i, o: captured.__setitem__("logits", o))
    tensors = {}
    for suffix, inp in (("", x), ("2", x2)):
        with torch.no_grad():
            model(inp)
        q = captured["logits"]
        tensors.update({f"input{suffix}": inp.numpy(), f"output_int{suffix}": q.int_repr().numpy(),
                        f"output_scale{suffix}": np.array([q.q_scale()], dtype=np.float64),
                        f"output_zero_point{suffix}": np.array([q.q_zero_point()], dtype=np.int64)})
    torch.save(model.state_dict(), os.path.join(out_dir, f"{name}.pt"))
    save_file(tensors, os.path.join(out_dir, f"{name}.io.safetensors"))
    print(f"{name}: {len(model.state_dict())} state entries, logits {tuple(q.shape)}", flush=True)


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_argument("out_dir")
    cli.add_argument("names")
    cli.add_argument("--engine", choices=["fbgemm", "x86"], default="fbgemm")
    cli.add_argument("--weights", choices=["per_channel", "per_tensor"], default="per_channel")
    cli.add_argument("--range", dest="in_range", choices=["in", "out"], default="in")
    args = cli.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    for name in args.names.split(","):
        export(name, args.out_dir, args.engine, args.weights, args.in_range)
