"""Seed cells (ner.nn.cells.SeedRNN) against PyTorch's fused kernels, at equal size.

    python bench/cell_speed.py                      # B 32, Tx 30, D 100, H 100, 1 thread
    python bench/cell_speed.py --batch 64 --steps 50 --threads 2

Times one layer, one direction, forward + backward of ``a.square().sum()`` (milliseconds, median
of ``--reps`` after ``--warmup``), for:

- every seed cell, and its fused counterpart (``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM``): the ratio
  is how much slower the readable cell is;
- the hand-written BPTT (``seed_rnn_tanh_bptt``, ``seed_lstm_bptt``) against autograd over the
  same scripted forward loop;
- ``unroll`` of the step cell in plain Python (no TorchScript, no batched input matmul), to show
  what compiling the loop and batching the gate matmuls buy.

Prints a markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ner.nn.cells import SeedRNN, SeedRNNConfig, unroll  # noqa: E402

FUSED_OF = {
    "seed_rnn_tanh": "rnn_tanh",
    "seed_rnn_relu": "rnn_relu",
    "seed_gru_simple": "gru",
    "seed_gru": "gru",
    "seed_lstm": "lstm",
    "seed_lstm_peephole": "lstm",
    "seed_rnn_tanh_bptt": "rnn_tanh",
    "seed_lstm_bptt": "lstm",
}


def fused(name: str, d: int, h: int) -> nn.Module:
    if name == "lstm":
        return nn.LSTM(d, h, batch_first=True)
    if name == "gru":
        return nn.GRU(d, h, batch_first=True)
    return nn.RNN(d, h, nonlinearity=name.removeprefix("rnn_"), batch_first=True)


def time_ms(step: Callable[[], None], warmup: int, reps: int) -> float:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def forward_backward(module: Callable, x: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        x.grad = None
        module(x)[0].square().sum().backward()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=30, help="Tx")
    parser.add_argument("--input", type=int, default=100, help="D")
    parser.add_argument("--hidden", type=int, default=100, help="H")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--reps", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    b, t, d, h = args.batch, args.steps, args.input, args.hidden
    x = torch.randn(b, t, d, requires_grad=True)
    ms: dict[str, float] = {}
    for name in sorted(set(FUSED_OF.values())):
        ms[name] = time_ms(forward_backward(fused(name, d, h), x), args.warmup, args.reps)
    for name in FUSED_OF:
        layer = SeedRNN(SeedRNNConfig(name, d, h))  # type: ignore[arg-type]
        ms[name] = time_ms(forward_backward(layer, x), args.warmup, args.reps)
        if not name.endswith("_bptt"):
            python_loop = (lambda cell: lambda x: (unroll(cell, x),))(layer.cell)
            ms[name + " (Python loop)"] = time_ms(
                forward_backward(python_loop, x), 2, max(5, args.reps // 3)
            )
    print(f"B={b} Tx={t} D={d} H={h}, {args.threads} thread(s), torch {torch.__version__}, "
          f"{platform.processor() or platform.machine()}\n")  # fmt: skip
    print("| cell | fwd+bwd ms | fused ms | × fused | Python loop ms | × compiled |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, base in FUSED_OF.items():
        py = ms.get(name + " (Python loop)")
        py_cols = f"{py:.1f} | {py / ms[name]:.1f}" if py else "— | —"
        print(
            f"| {name} | {ms[name]:.1f} | {ms[base]:.1f} ({base}) | {ms[name] / ms[base]:.1f} "
            f"| {py_cols} |"
        )
    print()
    for hand, auto in (("seed_rnn_tanh_bptt", "seed_rnn_tanh"), ("seed_lstm_bptt", "seed_lstm")):
        print(f"hand-written BPTT {hand}: {ms[hand]:.1f} ms vs autograd {ms[auto]:.1f} ms "
              f"(× {ms[hand] / ms[auto]:.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
