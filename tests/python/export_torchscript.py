"""Exports quantized models as frozen TorchScript files, with PyTorch's own
outputs, for `tests/jit_models.rs` and `qtensor run`:

    python3 tests/python/export_torchscript.py DIR [NAME,NAME,...]

For each model NAME and each way of saving it (`script`: torch.jit.script,
`trace`: torch.jit.trace; both then torch.jit.freeze and torch.jit.save) it
writes
- DIR/NAME.MODE.pt, the frozen TorchScript file (and for torchvision's
  networks DIR/NAME.state.pt, the same model's state dict);
- DIR/NAME.MODE.io.safetensors: the float inputs `input.0`, `input.1`, ...
  (batch 1 square, batch 2 non-square where the model takes images) and
  for each input i the result of `torch.jit.load(file)(input.i)`: a
  quantized result as `output.i.int` (its integers) with `output.i.scale`
  and `output.i.zero_point`, a float one as `output.i`.

The models: torchvision's seven quantized networks (eager mode, fbgemm),
FX-quantized float torchvision resnet18 and mobilenet_v3_small, a small
eager-mode model of our own with a 10-class head and a float island, and
dynamically quantized LSTM and TransformerEncoder models (trace only for the
Transformer, which PyTorch cannot script).
"""
import os
import sys
import warnings

import numpy as np
import torch
import torch.nn as nn
import torchvision
import torchvision.models.quantization as tvq
from safetensors.numpy import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_torchvision import randomize_norms  # noqa: E402  (the same models' statistics)

warnings.filterwarnings("ignore")
torch.backends.quantized.engine = "fbgemm"
TORCHVISION = ["resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_large", "shufflenet_v2_x1_0",
               "googlenet", "inception_v3"]


def image_inputs(side):
    g = torch.Generator().manual_seed(7)
    return [torch.randn(1, 3, side, side, generator=g), torch.randn(2, 3, side - 16, side + 16, generator=g)]


def calibrate(model, inputs, side):
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(2, 3, side, side, generator=g))
        for x in inputs:
            model(x)


def torchvision_eager(name):
    side = 299 if name == "inception_v3" else 224
    torch.manual_seed(0)
    extra = {"aux_logits": False, "init_weights": True} if name in ("googlenet", "inception_v3") else {}
    model = getattr(tvq, name)(weights=None, quantize=False, **extra)
    randomize_norms(model, side, torch.Generator().manual_seed(2))
    model.fuse_model()
    model.qconfig = torch.ao.quantization.get_default_qconfig("fbgemm")
    torch.ao.quantization.prepare(model, inplace=True)
    inputs = image_inputs(side)
    calibrate(model, inputs, side)
    torch.ao.quantization.convert(model, inplace=True)
    return model, inputs


def torchvision_fx(name):
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None)
    randomize_norms(model, 224, torch.Generator().manual_seed(2))
    inputs = image_inputs(224)
    prepared = prepare_fx(model, get_default_qconfig_mapping("fbgemm"), example_inputs=(inputs[0],))
    calibrate(prepared, inputs, 224)
    return convert_fx(prepared), inputs


class SmallNet(nn.Module):
    """An eager-mode model of our own: conv-bn-relu blocks, a residual add,
    functional max pooling, a float island (silu and a scale on dequantized
    values) and a 10-class head, returning quantized logits and float
    probabilities."""

    def __init__(self):
        super().__init__()
        self.quant = torch.ao.quantization.QuantStub()
        self.conv1 = nn.Conv2d(3, 16, 3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1, groups=4)
        self.relu2 = nn.ReLU()
        self.add = nn.quantized.FloatFunctional()
        self.dequant_island = torch.ao.quantization.DeQuantStub()
        self.quant_back = torch.ao.quantization.QuantStub()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)
        self.dequant = torch.ao.quantization.DeQuantStub()

    def forward(self, x):
        x = self.quant(x)
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.add.add(x, self.relu2(self.conv2(x)))
        # Functional pooling with its default stride (the kernel size).
        x = torch.nn.functional.max_pool2d(x, 2)
        f = self.dequant_island(x)
        f = torch.nn.functional.silu(f) * 0.5
        x = self.quant_back(f)
        x = torch.flatten(self.pool(x), 1)
        logits = self.fc(x)
        return logits, torch.softmax(self.dequant(logits), dim=1)


def eager_quantized(model, side, other):
    """Prepares an eager-mode model (fbgemm qconfig), calibrates it on its
    two test inputs (batch 1 at `side` x `side`, batch 2 at `other`) and
    one more batch, and converts it; returns it with the inputs."""
    model.qconfig = torch.ao.quantization.get_default_qconfig("fbgemm")
    torch.ao.quantization.prepare(model, inplace=True)
    g = torch.Generator().manual_seed(7)
    inputs = [torch.randn(1, 3, side, side, generator=g), torch.randn(2, 3, *other, generator=g)]
    with torch.no_grad():
        for x in inputs + [torch.randn(4, 3, side, side, generator=g)]:
            model(x)
    torch.ao.quantization.convert(model, inplace=True)
    return model, inputs


def small_eager():
    torch.manual_seed(3)
    model = SmallNet().eval()
    torch.ao.quantization.fuse_modules(model, [["conv1", "bn1", "relu1"], ["conv2", "relu2"]], inplace=True)
    return eager_quantized(model, 32, (24, 40))


class UpsampleNet(nn.Module):
    """A small model with the layers of decoders and feature pyramids:
    ReLU6, F.interpolate (whose scripted form leaves `for` loops and
    `uninitialized` in frozen code), nn.Upsample and a concatenation. (A
    standalone quantized BatchNorm2d would do too, but PyTorch cannot run
    its own scripted and frozen form: `annotate(float, scale)` of a 1-element
    tensor fails there.)"""

    def __init__(self):
        super().__init__()
        self.quant = torch.ao.quantization.QuantStub()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.r6 = nn.ReLU6()
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.c2 = nn.Conv2d(8, 4, 1)
        self.dequant = torch.ao.quantization.DeQuantStub()

    def forward(self, x):
        x = self.r6(self.c1(self.quant(x)))
        x = self.up(torch.nn.functional.interpolate(x, scale_factor=0.5, mode="nearest"))
        x = self.c2(x)
        return self.dequant(torch.cat([x, x], 1))


def small_upsample():
    torch.manual_seed(6)
    return eager_quantized(UpsampleNet().eval(), 16, (12, 20))


class LstmNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(16, 32, num_layers=2)
        self.fc = nn.Linear(32, 5)

    def forward(self, x):
        y, _ = self.lstm(x)
        return self.fc(y)


def lstm_dynamic():
    torch.manual_seed(4)
    model = torch.ao.quantization.quantize_dynamic(LstmNet().eval(), {nn.LSTM, nn.Linear}, dtype=torch.qint8)
    g = torch.Generator().manual_seed(7)
    return model, [torch.randn(6, 1, 16, generator=g), torch.randn(4, 2, 16, generator=g)]


def transformer_dynamic():
    torch.manual_seed(5)
    layer = nn.TransformerEncoderLayer(d_model=32, nhead=4, dim_feedforward=64, dropout=0.0)
    model = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False).eval()
    model = torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
    g = torch.Generator().manual_seed(7)
    return model, [torch.randn(5, 1, 32, generator=g), torch.randn(7, 2, 32, generator=g)]


def builders():
    b = {name: (lambda n=name: torchvision_eager(n)) for name in TORCHVISION}
    b["fx_resnet18"] = lambda: torchvision_fx("resnet18")
    b["fx_mobilenet_v3_small"] = lambda: torchvision_fx("mobilenet_v3_small")
    b["small_eager"] = small_eager
    b["small_upsample"] = small_upsample
    b["lstm_dynamic"] = lstm_dynamic
    b["transformer_dynamic"] = transformer_dynamic
    return b


def save_outputs(out, i, y):
    if isinstance(y, (tuple, list)):
        for j, item in enumerate(y):
            save_outputs(out, f"{i}.{j}", item)
    elif y is None:
        pass  # an absent tuple item (GoogLeNet's aux logits): nothing to compare
    elif y.is_quantized:
        out[f"output.{i}.int"] = y.int_repr().contiguous().numpy()
        out[f"output.{i}.scale"] = np.array([y.q_scale()], dtype=np.float64)
        out[f"output.{i}.zero_point"] = np.array([y.q_zero_point()], dtype=np.int64)
    else:
        out[f"output.{i}"] = y.detach().contiguous().numpy()


def export(name, build, out_dir):
    model, inputs = build()
    if name in TORCHVISION:
        # The same weights as a state dict, for qtensor::models (the
        # `model-ckpt/` bench workloads time it against the TorchScript run).
        torch.save(model.state_dict(), os.path.join(out_dir, f"{name}.state.pt"))
    modes = ["trace"] if name == "transformer_dynamic" else ["script", "trace"]
    for mode in modes:
        with torch.no_grad():
            sm = torch.jit.script(model) if mode == "script" else torch.jit.trace(model, inputs[0], check_trace=False)
            sm = torch.jit.freeze(sm.eval())
        path = os.path.join(out_dir, f"{name}.{mode}.pt")
        torch.jit.save(sm, path)
        loaded = torch.jit.load(path)
        out = {}
        for i, x in enumerate(inputs):
            out[f"input.{i}"] = x.numpy()
            with torch.no_grad():
                save_outputs(out, i, loaded(x))
        save_file(out, os.path.join(out_dir, f"{name}.{mode}.io.safetensors"))
        print(f"{name}.{mode}: saved", flush=True)


if __name__ == "__main__":
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    table = builders()
    names = sys.argv[2].split(",") if len(sys.argv) > 2 else list(table)
    for name in names:
        if name not in table:
            sys.exit(f"unknown model {name}; known: {', '.join(table)}")
        export(name, table[name], out_dir)
