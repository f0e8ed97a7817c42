"""The `digits` classifier of the `digits-quant` study: training, export and exact references.

Model (trained here with numpy, deterministic, a few seconds on one core)::

    8x8 image, pixels 0..16, x = p / 16
    conv 3x3, 'same' zero padding, 1 -> 8 channels, + bias, ReLU      -> h[64 * 8]  (index p*8 + c)
    dense 512 -> 10, + bias                                           -> logits, argmax = label

Data: scikit-learn's bundled `load_digits` (1797 images, no download), split with
`train_test_split(test_size=0.2, stratify=y, random_state=0)`: 1437 train / 360 held-out.

Export: `python programs/digits/digits.py export` writes `programs/digits/digits_model.c`, a C
source holding the fp32 weights (shortest round-trip float32 literals, so exact), the activation
calibration and the held-out images and labels (~100 KB, committed). The study compiles it next to
`digits.c`, so binaries are hermetic and the build cache hashes the model. `python
programs/digits/digits.py eval` prints the accuracy of every mode from the references below.

References (bit-exact mirrors of `programs/digits/digits.c`):

* `predict_fp32` accumulates in float32 in the C order (bias first, taps ky,kx; inputs 0..511), so
  its logits equal the C program's bit for bit (the C build uses -ffp-contract=off, no fast-math).
* `predict_quant` mirrors the integer path: symmetric signed N-bit weights (scale amax/qmax,
  per tensor or per output channel), unsigned N-bit activations (ReLU outputs, zero point 0),
  integer accumulation (int32; int64 for int16), biases quantised to the accumulator scale, and
  requantisation by a fixed-point multiplier m in [2^30, 2^31) and a rounding right shift.
  Every quantisation parameter is derived in IEEE double in the same order as the C code.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SEED = 0
CHANNELS = 8
N_CLASSES = 10
HIDDEN = 64 * CHANNELS
MODES = ("fp32", "int16", "int8", "int4")
BITS = {"fp32": 32, "int16": 16, "int8": 8, "int4": 4}
DEFAULT_OUT = Path(__file__).resolve().parent / "digits_model.c"


@dataclass
class DigitsModel:
    conv_w: np.ndarray      # float32 [8, 9]      (c, ky*3+kx)
    conv_b: np.ndarray      # float32 [8]
    dense_w: np.ndarray     # float32 [10, 512]   (k, p*8+c)
    dense_b: np.ndarray     # float32 [10]
    act_amax: np.float32    # calibration: max post-ReLU activation on the training set
    x_test: np.ndarray      # uint8 [n, 64], pixels 0..16
    y_test: np.ndarray      # int32 [n]
    train_accuracy: float


# ----------------------------------------------------------------------------- data, training

def load_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = d.data.astype(np.uint8)          # values 0..16
    y = d.target.astype(np.int32)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, stratify=y, random_state=SEED)
    return x_tr, x_te, y_tr, y_te


def _patches(x: np.ndarray) -> np.ndarray:
    """[n, 64] images -> [n, 64, 9] 3x3 'same' patches (zero padding), tap order ky*3+kx."""
    img = np.zeros((x.shape[0], 10, 10), dtype=x.dtype)
    img[:, 1:9, 1:9] = x.reshape(-1, 8, 8)
    cols = [img[:, ky:ky + 8, kx:kx + 8].reshape(-1, 64) for ky in range(3) for kx in range(3)]
    return np.stack(cols, axis=2)


def _forward64(params, patches):
    wc, bc, wd, bd = params
    z = patches @ wc.T + bc                       # [n, 64, 8]
    h = np.maximum(z, 0.0).reshape(len(patches), HIDDEN)
    return z, h, h @ wd.T + bd


def train(seed: int = SEED, epochs: int = 40, batch: int = 32, lr: float = 0.01) -> DigitsModel:
    """Adam on softmax cross-entropy, float64 math, fixed seed: the same weights every run."""
    x_tr, x_te, y_tr, y_te = load_split()
    rng = np.random.default_rng(seed)
    p_tr = _patches(x_tr.astype(np.float64) / 16.0)
    params = [
        rng.normal(0, math.sqrt(2 / 9), (CHANNELS, 9)),
        np.zeros(CHANNELS),
        rng.normal(0, math.sqrt(1 / HIDDEN), (N_CLASSES, HIDDEN)),
        np.zeros(N_CLASSES),
    ]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    b1, b2, eps, wd_l2, t = 0.9, 0.999, 1e-8, 1e-4, 0
    n = len(p_tr)
    for _ in range(epochs):
        order = rng.permutation(n)
        for s in range(0, n, batch):
            idx = order[s:s + batch]
            pt, yt = p_tr[idx], y_tr[idx]
            z, h, logits = _forward64(params, pt)
            logits = logits - logits.max(axis=1, keepdims=True)
            prob = np.exp(logits)
            prob /= prob.sum(axis=1, keepdims=True)
            prob[np.arange(len(idx)), yt] -= 1.0
            g_logits = prob / len(idx)                         # [b, 10]
            g_wd = g_logits.T @ h + wd_l2 * params[2]
            g_bd = g_logits.sum(axis=0)
            g_h = (g_logits @ params[2]).reshape(len(idx), 64, CHANNELS) * (z > 0)
            g_wc = np.einsum("bpc,bpt->ct", g_h, pt) + wd_l2 * params[0]
            g_bc = g_h.sum(axis=(0, 1))
            t += 1
            for i, g in enumerate((g_wc, g_bc, g_wd, g_bd)):
                m[i] = b1 * m[i] + (1 - b1) * g
                v[i] = b2 * v[i] + (1 - b2) * g * g
                mh, vh = m[i] / (1 - b1 ** t), v[i] / (1 - b2 ** t)
                params[i] = params[i] - lr * mh / (np.sqrt(vh) + eps)
    wc, bc, wd, bd = (p.astype(np.float32) for p in params)
    model = DigitsModel(wc, bc, wd, bd, np.float32(0), x_te, y_te, 0.0)
    h_tr = _hidden_fp32(model, x_tr)
    model.act_amax = np.float32(h_tr.max())
    model.train_accuracy = float((_dense_fp32(model, h_tr).argmax(axis=1) == y_tr).mean())
    return model


# ----------------------------------------------------------------------------- fp32 reference

def _hidden_fp32(model: DigitsModel, x: np.ndarray) -> np.ndarray:
    """Conv + ReLU in float32, accumulation order of the C code: bias, then taps ky*3+kx."""
    pt = _patches(x.astype(np.float32) / np.float32(16.0))      # [n, 64, 9] float32
    acc = np.broadcast_to(model.conv_b, (len(x), 64, CHANNELS)).astype(np.float32)
    for tap in range(9):
        acc = acc + pt[:, :, tap:tap + 1] * model.conv_w[None, None, :, tap]
    return np.where(acc > 0, acc, np.float32(0)).reshape(len(x), HIDDEN).astype(np.float32)


def _dense_fp32(model: DigitsModel, h: np.ndarray) -> np.ndarray:
    acc = np.broadcast_to(model.dense_b, (len(h), N_CLASSES)).astype(np.float32)
    for i in range(HIDDEN):
        acc = acc + h[:, i:i + 1] * model.dense_w[None, :, i]
    return acc


def logits_fp32(model: DigitsModel, x: np.ndarray | None = None) -> np.ndarray:
    x = model.x_test if x is None else x
    return _dense_fp32(model, _hidden_fp32(model, x))


def predict_fp32(model: DigitsModel, x: np.ndarray | None = None) -> np.ndarray:
    return logits_fp32(model, x).argmax(axis=1).astype(np.int32)


# ----------------------------------------------------------------------------- integer reference

def _round_away(x: np.ndarray) -> np.ndarray:
    """C: copysign(floor(fabs(x) + 0.5), x) in double."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _weight_scales(w: np.ndarray, qmax: int, per_channel: bool) -> np.ndarray:
    """Scale per output channel (rows of w), as float64; per-tensor repeats one value."""
    amax = np.abs(w).max(axis=1) if per_channel else np.full(len(w), np.abs(w).max())
    amax = amax.astype(np.float64)
    amax[amax == 0] = qmax        # an all-zero row: scale 1
    return amax / qmax


def _quant_weights(w: np.ndarray, s: np.ndarray, qmax: int) -> np.ndarray:
    q = _round_away(w.astype(np.float64) / s[:, None])
    return np.clip(q, -qmax, qmax).astype(np.int64)


def _multiplier(real: float) -> tuple[int, int]:
    """real = m * 2^-shift, m in [2^30, 2^31): the C make_rq()."""
    f, e = math.frexp(real)
    m = int(math.floor(f * 2147483648.0 + 0.5))
    if m == 1 << 31:
        m >>= 1
        e += 1
    return m, 31 - e


def _requant(acc: np.ndarray, m: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """(acc * m + 2^(shift-1)) >> shift with exact Python integers (the C uses int64/__int128)."""
    a = acc.astype(object)
    return ((a * m + (np.ones_like(shift, dtype=object) << (shift - 1))) >> shift).astype(np.int64)


def quant_params(model: DigitsModel, bits: int, per_channel: bool) -> dict:
    qw = (1 << (bits - 1)) - 1
    qa = (1 << bits) - 1
    s_x = 1.0 / qa
    s_h = float(model.act_amax) / qa
    s_wc = _weight_scales(model.conv_w, qw, per_channel)
    s_wd = _weight_scales(model.dense_w, qw, per_channel)
    conv_mult = [_multiplier(s * s_x / s_h) for s in s_wc]
    s_wd_max = float(s_wd.max())
    dense_mult = [_multiplier(s / s_wd_max) for s in s_wd]
    return {
        "qmax_w": qw, "qmax_a": qa,
        "conv_w": _quant_weights(model.conv_w, s_wc, qw),
        "conv_b": _round_away(model.conv_b.astype(np.float64) / (s_wc * s_x)).astype(np.int64),
        "dense_w": _quant_weights(model.dense_w, s_wd, qw),
        "dense_b": _round_away(model.dense_b.astype(np.float64) / (s_wd * s_h)).astype(np.int64),
        "conv_m": np.array([m for m, _ in conv_mult], dtype=object),
        "conv_shift": np.array([s for _, s in conv_mult], dtype=object),
        "dense_m": np.array([m for m, _ in dense_mult], dtype=object),
        "dense_shift": np.array([s for _, s in dense_mult], dtype=object),
    }


def logits_quant(model: DigitsModel, bits: int, per_channel: bool, x: np.ndarray | None = None) -> np.ndarray:
    """Integer logits on the common scale max(s_w) * s_h, exactly as the C program computes them."""
    x = model.x_test if x is None else x
    q = quant_params(model, bits, per_channel)
    qa = q["qmax_a"]
    xq = (x.astype(np.int64) * qa + 8) // 16                      # pixels 0..16 -> 0..qa
    acc = _patches(xq) @ q["conv_w"].T + q["conv_b"]              # [n, 64, 8] int64
    hq = np.clip(_requant(acc, q["conv_m"], q["conv_shift"]), 0, qa).reshape(len(x), HIDDEN)
    acc2 = hq @ q["dense_w"].T + q["dense_b"]                     # [n, 10]
    return _requant(acc2, q["dense_m"], q["dense_shift"])


def predict_quant(model: DigitsModel, bits: int, per_channel: bool, x: np.ndarray | None = None) -> np.ndarray:
    return logits_quant(model, bits, per_channel, x).argmax(axis=1).astype(np.int32)


def predict(model: DigitsModel, mode: str, per_channel: bool = False) -> np.ndarray:
    return predict_fp32(model) if mode == "fp32" else predict_quant(model, BITS[mode], per_channel)


def accuracy(model: DigitsModel, mode: str, per_channel: bool = False) -> float:
    return float((predict(model, mode, per_channel) == model.y_test).mean())


def model_bytes(mode: str, per_channel: bool) -> int:
    """Bytes of the deployed weights, as digits.c reports them (see its header comment)."""
    n_w = CHANNELS * 9 + N_CLASSES * HIDDEN
    n_b = CHANNELS + N_CLASSES
    if mode == "fp32":
        return 4 * (n_w + n_b)
    bits = BITS[mode]
    w = (CHANNELS * 9 * bits + 7) // 8 + (N_CLASSES * HIDDEN * bits + 7) // 8
    b = n_b * (8 if bits == 16 else 4)
    scales = 4 * ((CHANNELS + N_CLASSES) if per_channel else 2) + 4 * 2
    return w + b + scales


# ----------------------------------------------------------------------------- export

def _f32(v) -> str:
    s = str(np.float32(v))          # shortest repr that round-trips to this float32
    if "e" not in s and "." not in s and "inf" not in s and "nan" not in s:
        s += ".0"
    return s + "f"


def _wrap(items: list[str], per_line: int = 16) -> str:
    return ",\n".join("    " + ",".join(items[i:i + per_line]) for i in range(0, len(items), per_line))


def export_c(model: DigitsModel, path: Path = DEFAULT_OUT) -> Path:
    path = Path(path)
    n = len(model.y_test)
    text = [
        "/* GENERATED by `python programs/digits/digits.py export` -- do not edit.",
        f" * seed {SEED}; train accuracy {model.train_accuracy:.4f}; held-out n={n};",
        " * layout: see programs/digits/digits_model.h */",
        '#include "digits_model.h"',
        "",
        f"const int digits_n_test = {n};",
        f"const float digits_act_amax = {_f32(model.act_amax)};",
        f"const float digits_conv_w[{CHANNELS * 9}] = {{\n{_wrap([_f32(v) for v in model.conv_w.ravel()], 6)}\n}};",
        f"const float digits_conv_b[{CHANNELS}] = {{\n{_wrap([_f32(v) for v in model.conv_b], 6)}\n}};",
        f"const float digits_dense_w[{N_CLASSES * HIDDEN}] = {{\n{_wrap([_f32(v) for v in model.dense_w.ravel()], 8)}\n}};",
        f"const float digits_dense_b[{N_CLASSES}] = {{\n{_wrap([_f32(v) for v in model.dense_b], 6)}\n}};",
        f"const unsigned char digits_test_x[{n * 64}] = {{\n{_wrap([str(int(v)) for v in model.x_test.ravel()], 32)}\n}};",
        f"const int digits_test_y[{n}] = {{\n{_wrap([str(int(v)) for v in model.y_test], 32)}\n}};",
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(text))
    tmp.replace(path)
    return path


def load_c(path: Path = DEFAULT_OUT) -> DigitsModel:
    """Parse the exported C source back (the weights the C program actually runs)."""
    import re

    src = Path(path).read_text()

    def arr(name, dtype):
        body = re.search(rf"{name}\[\d+\] = \{{(.*?)\}};", src, re.S).group(1)
        vals = [v.strip().rstrip("f") for v in body.replace("\n", "").split(",") if v.strip()]
        return np.array([float(v) for v in vals]).astype(dtype)

    amax = re.search(r"digits_act_amax = ([^;]+);", src).group(1).rstrip("f")
    train_acc = float(re.search(r"train accuracy ([0-9.]+)", src).group(1))
    return DigitsModel(
        arr("digits_conv_w", np.float32).reshape(CHANNELS, 9),
        arr("digits_conv_b", np.float32),
        arr("digits_dense_w", np.float32).reshape(N_CLASSES, HIDDEN),
        arr("digits_dense_b", np.float32),
        np.float32(float(amax)),
        arr("digits_test_x", np.float64).astype(np.uint8).reshape(-1, 64),
        arr("digits_test_y", np.float64).astype(np.int32),
        train_acc,
    )


def report(model: DigitsModel) -> str:
    lines = [f"{'mode':6} {'scales':12} {'accuracy':>8} {'model_bytes':>11}"]
    for mode in MODES:
        for pc in ((False,) if mode == "fp32" else (False, True)):
            lines.append(f"{mode:6} {'per_channel' if pc else 'per_tensor':12} "
                         f"{accuracy(model, mode, pc):8.4f} {model_bytes(mode, pc):11d}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="digits.py", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export", help="train and write the C model source")
    e.add_argument("--out", type=Path, default=DEFAULT_OUT)
    v = sub.add_parser("eval", help="accuracy of every mode on the exported model (numpy references)")
    v.add_argument("--model", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    if args.cmd == "export":
        model = train()
        out = export_c(model, args.out)
        print(f"wrote {out} ({out.stat().st_size} bytes); train accuracy {model.train_accuracy:.4f}")
        print(report(load_c(out)))
    else:
        print(report(load_c(args.model)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
