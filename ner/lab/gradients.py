"""Vanishing- and exploding-gradient lab: ``ner lab gradients --out DIR [--quick]``.

The task is the seed notes' long-range agreement: "The cat, which already ate ..., was full" /
"The cats, which ..., were full". A sequence is a subject, ``cat`` or ``cats``, then ``d`` filler
words drawn at random, then a query token; at the query the model says was (singular) or were
(plural): ŷ = σ(w_y a<Tx> + b_y) with Tx = d + 2. Only x<1> decides the answer, so the error
signal has to travel d + 1 steps back, through ∂a<t>/∂a<t-1>, to reach the weights that read it.

Three experiments, each a plot and a CSV in the output folder:

1. ``accuracy.csv`` (cell, distance, accuracy), ``accuracy.png``: each cell (basic RNN, GRU,
   LSTM; ``ner.nn.cells.SeedRNN``) trained from scratch at each distance with the same budget,
   accuracy on fresh sequences. 0.5 is chance.
2. ``grad_norms.csv`` (cell, stage, t, norm), ``grad_norms.png``: ‖∂L/∂a<t>‖ for t = 1..Tx at the
   longest distance, at initialisation and after training, from the step-by-step cell
   (``unroll``'s graph, so each a<t> is a node whose gradient autograd keeps).
3. ``clipping.csv`` (clipping, step, grad_norm, loss), ``clipping.png``: a basic ReLU RNN whose
   recurrent weights start at W_aa = 1.1 I, trained with plain SGD twice: without clipping
   ∂a<t>/∂a<t-1> = 1.1 I makes the gradient grow as 1.1^Tx, each step throws the weights further
   and within a few steps the forward pass overflows (inf, then NaN); with ``clip_grad_norm_`` (the
   notes' "rescale if the norm is above a threshold") every update is bounded and training goes
   on.

Library code (plain torch, no prints); ``main`` is the command line.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import Tensor, nn

from ner.nn.cells import LSTMCell, SeedRNN, SeedRNNConfig

CELL_NAMES = {"seed_rnn_tanh": "basic RNN (tanh)", "seed_gru": "GRU", "seed_lstm": "LSTM"}
HAND_BPTT = ("seed_rnn_tanh", "seed_rnn_relu", "seed_lstm")

# token ids: the two subjects, the query ("was or were?"), then the filler words
CAT, CATS, QUERY, FIRST_FILLER = 0, 1, 2, 3


@dataclass(frozen=True)
class LabConfig:
    """One run of the lab.

    Attributes:
        cells: the seed cells to compare (names of ``ner.nn.cells.SeedCell``).
        distances: filler lengths d between the subject and the query.
        steps: Adam steps per (cell, distance) model.
        batch_size: sequences per step.
        hidden_size: H of every cell.
        embed_dim: size of the (fixed, random) word vectors x<t>.
        fillers: number of distinct filler words.
        lr: Adam learning rate.
        clip: gradient-norm threshold while training the accuracy models (keeps the comparison
            about vanishing, not exploding, gradients).
        eval_size: fresh sequences per accuracy point.
        carry_bias: initial gate bias towards carrying the memory forward: the LSTM's forget
            gate starts at b_f = +carry_bias (Gers et al. 2000; Jozefowicz et al. 2015 use 1), the
            GRUs' update gate at b_u = -carry_bias, so Γf ≈ 1 and Γu ≈ 0 and c<t> ≈ c<t-1>. The
            basic RNN has no such knob. 0 keeps the default initialisation.
        bptt: "autograd", or "manual" for the hand-written BPTT of ner.nn.bptt (RNN and LSTM).
        explode_steps: SGD steps of the exploding-gradient runs.
        explode_distance: filler length of the exploding-gradient runs.
        explode_scale: W_aa = scale * I at the start of the exploding-gradient runs.
        explode_lr: their SGD learning rate.
        explode_clip: their clipping threshold (the run with clipping on).
        seed: torch seed.
    """

    cells: tuple[str, ...] = ("seed_rnn_tanh", "seed_gru", "seed_lstm")
    distances: tuple[int, ...] = (5, 10, 20, 50, 100)
    steps: int = 1500
    batch_size: int = 32
    hidden_size: int = 32
    embed_dim: int = 8
    fillers: int = 20
    lr: float = 0.01
    clip: float = 1.0
    eval_size: int = 1000
    carry_bias: float = 3.0
    bptt: str = "autograd"
    explode_steps: int = 60
    explode_distance: int = 30
    explode_scale: float = 1.1
    explode_lr: float = 0.005
    explode_clip: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.cells or not self.distances:
            raise ValueError("need at least one cell and one distance")
        for cell in self.cells:
            SeedRNNConfig(cell, 1, 1)  # type: ignore[arg-type]  # raises for an unknown name
        if min(self.distances) < 1:
            raise ValueError(f"distances must be >= 1, got {self.distances}")
        if min(self.steps, self.batch_size, self.hidden_size, self.eval_size) < 1:
            raise ValueError("steps, batch_size, hidden_size and eval_size must be >= 1")
        if self.bptt not in ("autograd", "manual"):
            raise ValueError(f"bptt must be 'autograd' or 'manual', got {self.bptt!r}")

    @property
    def work(self) -> int:
        """Training steps in all, for a progress bar."""
        return len(self.cells) * len(self.distances) * self.steps + 2 * self.explode_steps


QUICK = LabConfig(steps=400, eval_size=500, explode_steps=40)
"""``--quick``: a few minutes on 2 CPU cores, and the effects are already plain."""


# ------------------------------------------------------------------------------------- the task


def agreement_batch(
    batch_size: int, distance: int, fillers: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """-> tokens (B, d + 2) [subject, d fillers, query] and targets (B,), 1.0 = plural (were)."""
    plural = torch.randint(0, 2, (batch_size,), generator=generator)
    words = (FIRST_FILLER, FIRST_FILLER + fillers)
    filler = torch.randint(*words, (batch_size, distance), generator=generator)
    query = torch.full((batch_size, 1), QUERY)
    tokens = torch.cat([(CAT + plural).unsqueeze(1), filler, query], dim=1)
    return tokens, plural.float()


class AgreementModel(nn.Module):
    """tokens (B, Tx) -> logit of "plural" (B,): x<t> = E[token], one SeedRNN, ŷ from a<Tx>."""

    def __init__(self, cell: str, config: LabConfig) -> None:
        super().__init__()
        bptt = config.bptt if cell in HAND_BPTT else "autograd"
        # Fixed random word vectors: learned ones would let the model zero the filler out, and a
        # basic RNN could then carry x<1> untouched; real words always move a<t> a little.
        self.embed = nn.Embedding(FIRST_FILLER + config.fillers, config.embed_dim)
        self.embed.weight.requires_grad_(False)
        self.rnn = SeedRNN(SeedRNNConfig(cell, config.embed_dim, config.hidden_size, bptt))  # type: ignore[arg-type]
        self.readout = nn.Linear(config.hidden_size, 1)  # w_y, b_y
        with torch.no_grad():
            if hasattr(self.rnn.cell, "b_f"):
                self.rnn.cell.b_f.add_(config.carry_bias)  # Γf ≈ 1: keep c<t-1>
            if hasattr(self.rnn.cell, "b_u"):
                self.rnn.cell.b_u.sub_(config.carry_bias)  # Γu ≈ 0: write little of c~<t>

    def forward(self, tokens: Tensor) -> Tensor:
        """tokens (B, Tx) -> logits (B,)."""
        a, _ = self.rnn(self.embed(tokens))  # (B, Tx, H)
        return self.readout(a[:, -1]).squeeze(-1)

    def grad_norms(self, tokens: Tensor, targets: Tensor) -> list[float]:
        """‖∂L/∂a<t>‖ for t = 1..Tx (L the batch-mean loss), through the step-by-step cell."""
        x = self.embed(tokens)  # (B, Tx, D)
        cell = self.rnn.cell
        state = cell.initial_state(x)
        steps = []
        for t in range(x.shape[1]):
            a_t, state = cell(x[:, t], state)  # (B, H)
            if not isinstance(cell, LSTMCell):
                state = a_t  # the GRU and RNN pass a<t> itself on: its gradient is the total one
            a_t.retain_grad()
            steps.append(a_t)
        loss = nn.functional.binary_cross_entropy_with_logits(
            self.readout(steps[-1]).squeeze(-1), targets
        )
        self.zero_grad()
        loss.backward()
        self.zero_grad()
        return [float(a_t.grad.norm()) for a_t in steps]  # type: ignore[union-attr]


# ------------------------------------------------------------------------------------ training


@dataclass(frozen=True)
class LabResult:
    """Everything the CSVs and plots are made of."""

    accuracy: list[tuple[str, int, float]] = field(default_factory=list)  # cell, distance, acc
    grad_norms: list[tuple[str, str, int, float]] = field(default_factory=list)  # cell, stage, t
    clipping: list[tuple[str, int, float, float]] = field(default_factory=list)  # on/off, step
    seconds: float = 0.0
    explode_scale: float = 0.0
    explode_clip: float = 0.0


def _loss(model: nn.Module, tokens: Tensor, targets: Tensor) -> Tensor:
    return nn.functional.binary_cross_entropy_with_logits(model(tokens), targets)


@torch.no_grad()
def accuracy(model: AgreementModel, config: LabConfig, distance: int, seed: int) -> float:
    """Accuracy on ``config.eval_size`` fresh sequences at ``distance``."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    tokens, targets = agreement_batch(config.eval_size, distance, config.fillers, generator)
    correct = ((model(tokens) > 0).float() == targets).float().mean()
    model.train()
    return round(float(correct), 4)


def train_agreement(
    cell: str, distance: int, config: LabConfig, tick: Callable[[], None] = lambda: None
) -> AgreementModel:
    """A model of ``cell`` trained for ``config.steps`` Adam steps at ``distance``."""
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed + distance)
    model = AgreementModel(cell, config)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=config.lr)
    for _ in range(config.steps):
        tokens, targets = agreement_batch(config.batch_size, distance, config.fillers, generator)
        optimizer.zero_grad()
        _loss(model, tokens, targets).backward()
        nn.utils.clip_grad_norm_(model.parameters(), config.clip)
        optimizer.step()
        tick()
    return model


def exploding_run(
    config: LabConfig, clip: bool, tick: Callable[[], None] = lambda: None
) -> list[tuple[int, float, float]]:
    """(step, gradient norm before clipping, loss) of a ReLU RNN with W_aa = scale * I, by SGD.

    Without clipping the run goes on after the first non-finite value, so the CSV shows inf/NaN.
    """
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    model = AgreementModel("seed_rnn_relu", replace(config, bptt="autograd"))
    with torch.no_grad():
        model.embed.weight.abs_()  # positive inputs keep the ReLUs on: a<t> grows as scale^t
        model.rnn.cell.W_aa.copy_(config.explode_scale * torch.eye(config.hidden_size))
    optimizer = torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad], lr=config.explode_lr
    )
    rows = []
    for step in range(config.explode_steps):
        tokens, targets = agreement_batch(
            config.batch_size, config.explode_distance, config.fillers, generator
        )
        optimizer.zero_grad()
        loss = _loss(model, tokens, targets)
        loss.backward()
        max_norm = config.explode_clip if clip else math.inf
        norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm)  # the norm before clipping
        optimizer.step()
        rows.append((step, float(norm), float(loss.detach())))
        tick()
    return rows


def run(config: LabConfig, tick: Callable[[], None] = lambda: None) -> LabResult:
    """All three experiments. ``tick`` is called once per training step (a progress bar)."""
    start = time.perf_counter()
    result = LabResult()
    longest = max(config.distances)
    probe = agreement_batch(256, longest, config.fillers, torch.Generator().manual_seed(-1 % 2**31))
    for cell in config.cells:
        for distance in config.distances:
            model = train_agreement(cell, distance, config, tick)
            acc = accuracy(model, config, distance, seed=10_000 + config.seed)
            result.accuracy.append((cell, distance, acc))
            if distance == longest:
                torch.manual_seed(config.seed)  # the same initial weights as the trained model
                fresh = AgreementModel(cell, config)
                for stage, m in (("init", fresh), ("trained", model)):
                    norms = m.grad_norms(*probe)
                    result.grad_norms.extend((cell, stage, t + 1, n) for t, n in enumerate(norms))
    for clip in (False, True):
        rows = exploding_run(config, clip, tick)
        result.clipping.extend(("on" if clip else "off", *row) for row in rows)
    seconds = time.perf_counter() - start
    return replace(
        result,
        seconds=seconds,
        explode_scale=config.explode_scale,
        explode_clip=config.explode_clip,
    )


# ------------------------------------------------------------------------------- files and plots


def write_csvs(result: LabResult, out: Path) -> None:
    """accuracy.csv, grad_norms.csv and clipping.csv under ``out``."""
    tables = {
        "accuracy.csv": (("cell", "distance", "accuracy"), result.accuracy),
        "grad_norms.csv": (("cell", "stage", "t", "norm"), result.grad_norms),
        "clipping.csv": (("clipping", "step", "grad_norm", "loss"), result.clipping),
    }
    for name, (header, rows) in tables.items():
        with open(out / name, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows(rows)  # type: ignore[arg-type]


def _label(cell: str) -> str:
    return CELL_NAMES.get(cell, cell)


def plot(result: LabResult, out: Path) -> list[Path]:
    """accuracy.png, grad_norms.png and clipping.png under ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = [out / "accuracy.png", out / "grad_norms.png", out / "clipping.png"]
    cells = list(dict.fromkeys(c for c, _, _ in result.accuracy))

    fig, ax = plt.subplots(figsize=(6, 4))
    for cell in cells:
        points = [(d, a) for c, d, a in result.accuracy if c == cell]
        ax.plot(*zip(*points, strict=True), marker="o", label=_label(cell))
    ax.axhline(0.5, color="grey", linestyle=":", label="chance")
    ax.set(xscale="log", xlabel="distance d (filler words between subject and verb)")
    ax.set(ylabel="accuracy (was / were)", ylim=(0.4, 1.02), title="Long-range agreement")
    ax.set_xticks([d for _, d, _ in result.accuracy[: len(result.accuracy) // len(cells)]])
    ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.legend()
    fig.tight_layout()
    fig.savefig(paths[0], dpi=120)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, stage in zip(axes, ("init", "trained"), strict=True):
        for cell in cells:
            points = [(t, n) for c, s, t, n in result.grad_norms if c == cell and s == stage]
            if points:
                ax.plot(*zip(*points, strict=True), label=_label(cell))
        ax.set(yscale="log", xlabel="t", title=f"‖∂L/∂a<t>‖, {stage}")
    axes[0].set_ylabel("gradient norm (loss at the last step)")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(paths[1], dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    top = max((n for _, _, n, _ in result.clipping if math.isfinite(n)), default=1.0)
    for clip, style in (("off", "tab:red"), ("on", "tab:blue")):
        rows = [(s, n) for c, s, n, _ in result.clipping if c == clip]
        finite = [(s, n) for s, n in rows if math.isfinite(n)]
        if finite:
            ax.plot(*zip(*finite, strict=True), color=style, marker=".", label=f"clipping {clip}")
        bad = [s for s, n in rows if not math.isfinite(n)]
        if bad:
            ax.scatter(bad, [top * 10] * len(bad), color=style, marker="x", label="inf / NaN")
    ax.set(yscale="log", xlabel="SGD step", ylabel="‖∂L/∂W‖ before clipping")
    ax.axhline(result.explode_clip, color="tab:blue", linestyle=":", label="clipping threshold")
    ax.set(title=f"Exploding gradients: ReLU RNN, W_aa = {result.explode_scale:g} I at step 0")
    ax.legend()
    fig.tight_layout()
    fig.savefig(paths[2], dpi=120)
    plt.close(fig)
    return paths


def summary(result: LabResult) -> str:
    """A short plain-text table: accuracy per cell and distance, gradient reach, clipping."""
    cells = list(dict.fromkeys(c for c, _, _ in result.accuracy))
    distances = list(dict.fromkeys(d for _, d, _ in result.accuracy))
    acc = {(c, d): a for c, d, a in result.accuracy}
    lines = ["accuracy        " + "".join(f"{'d=' + str(d):>8}" for d in distances)]
    for cell in cells:
        lines.append(f"{_label(cell):<16}" + "".join(f"{acc[cell, d]:>8.2f}" for d in distances))
    lines.append("")
    lines.append("‖∂L/∂a<1>‖ / ‖∂L/∂a<Tx>‖ at the longest distance (init -> trained)")
    for cell in cells:
        ratios = []
        for stage in ("init", "trained"):
            norms = [n for c, s, _, n in result.grad_norms if c == cell and s == stage]
            ratios.append(f"{norms[0] / norms[-1]:.1e}" if norms and norms[-1] > 0 else "n/a")
        lines.append(f"{_label(cell):<16}{ratios[0]:>10} -> {ratios[1]}")
    lines.append("")
    for clip in ("off", "on"):
        norms = [n for c, _, n, _ in result.clipping if c == clip]
        bad = sum(not math.isfinite(n) for n in norms)
        finite = [n for n in norms if math.isfinite(n)]
        peak = f"{max(finite):.1e}" if finite else "n/a"
        lines.append(
            f"clipping {clip:<4} max finite grad norm {peak}, non-finite steps {bad}/{len(norms)}"
        )
    lines.append(f"\n{result.seconds:.0f} s")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- command line


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ner lab gradients",
        description="Vanishing and exploding gradients through time on a long-range agreement "
        "task ('The cat(s), which ..., was/were full'): accuracy against distance for a basic "
        "RNN, a GRU and an LSTM, ‖∂L/∂a<t>‖ against t, and gradient clipping.",
    )
    parser.add_argument("--out", required=True, type=Path, help="output folder (PNG plots, CSVs)")
    parser.add_argument("--quick", action="store_true", help="a smaller budget (minutes on a CPU)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--steps", type=int, help="Adam steps per cell and distance")
    parser.add_argument("--distances", type=_ints, help="filler lengths, e.g. 5,10,20,50,100")
    parser.add_argument("--cells", help="seed cells, e.g. seed_rnn_tanh,seed_gru,seed_lstm")
    parser.add_argument("--hidden-size", type=int, help="H of every cell")
    parser.add_argument("--batch-size", type=int, help="sequences per step")
    parser.add_argument("--eval-size", type=int, help="sequences per accuracy point")
    parser.add_argument("--lr", type=float, help="Adam learning rate")
    parser.add_argument(
        "--carry-bias",
        type=float,
        help="initial forget-gate bias of the LSTM (minus it: update-gate bias of the GRU); 0 = "
        "PyTorch's default initialisation (default 3)",
    )
    parser.add_argument(
        "--bptt",
        choices=("autograd", "manual"),
        default="autograd",
        help="manual: train the RNN and LSTM with the hand-written BPTT of ner.nn.bptt",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def config_from_args(args: argparse.Namespace) -> LabConfig:
    """The ``LabConfig`` the options describe (``--quick`` first, then explicit options)."""
    config = replace(QUICK if args.quick else LabConfig(), seed=args.seed, bptt=args.bptt)
    changes = {
        "steps": args.steps,
        "distances": args.distances,
        "cells": tuple(args.cells.split(",")) if args.cells else None,
        "hidden_size": args.hidden_size,
        "batch_size": args.batch_size,
        "eval_size": args.eval_size,
        "carry_bias": args.carry_bias,
        "lr": args.lr,
    }
    return replace(config, **{k: v for k, v in changes.items() if v is not None})


def main(argv: Sequence[str] | None = None) -> int:
    """``ner lab gradients``: run the lab, write plots and CSVs, print a summary table."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    out: Path = args.out
    if out.exists() and not out.is_dir():
        parser.exit(2, f"{parser.prog}: error: --out {out} exists and is not a folder\n")
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)  # tiny matrices: more threads only wait for each other
    if args.no_progress:
        result = run(config)
    else:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        columns = (TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn())
        with Progress(*columns, transient=True) as progress:
            task = progress.add_task("training", total=config.work)
            result = run(config, lambda: progress.advance(task))
    write_csvs(result, out)
    paths = plot(result, out)
    print(summary(result))
    print(f"wrote {', '.join(p.name for p in paths)} and accuracy.csv, grad_norms.csv, "
          f"clipping.csv to {out}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
