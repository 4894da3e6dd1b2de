"""ner.lab.gradients: the agreement task, the gradient probes, clipping, and the command line on a
budget small enough for a test (the full --quick run is marked slow)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch

from ner.lab.gradients import (
    CAT,
    QUERY,
    AgreementModel,
    LabConfig,
    agreement_batch,
    exploding_run,
    main,
)

torch.set_num_threads(1)


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_agreement_batch_carries_the_number_in_x1_only():
    tokens, plural = agreement_batch(64, 7, 5, torch.Generator().manual_seed(0))
    assert tokens.shape == (64, 9)
    assert torch.equal(tokens[:, 0] - CAT, plural.long())  # cat -> was, cats -> were
    assert bool((tokens[:, -1] == QUERY).all())
    assert bool((tokens[:, 1:-1] > QUERY).all())  # filler words only in between
    assert 0 < plural.mean() < 1


def test_grad_norms_vanish_for_a_basic_rnn_at_a_distance():
    """‖∂L/∂a<1>‖ << ‖∂L/∂a<Tx>‖ for a basic tanh RNN, much less so for a GRU with carry bias."""
    config = LabConfig(hidden_size=16)
    probe = agreement_batch(32, 40, config.fillers, torch.Generator().manual_seed(1))
    ratios = {}
    for cell in ("seed_rnn_tanh", "seed_gru"):
        torch.manual_seed(0)
        norms = AgreementModel(cell, config).grad_norms(*probe)
        assert len(norms) == 42
        ratios[cell] = norms[0] / norms[-1]
    assert ratios["seed_rnn_tanh"] < 1e-6
    assert ratios["seed_gru"] > 1e3 * ratios["seed_rnn_tanh"]


def test_clipping_stops_the_blow_up():
    config = LabConfig(explode_steps=10)
    off = exploding_run(config, clip=False)
    on = exploding_run(config, clip=True)
    assert any(not math.isfinite(norm) for _, norm, _ in off)  # inf/NaN without clipping
    assert all(math.isfinite(norm) and math.isfinite(loss) for _, norm, loss in on)
    assert on[0][1] > 100  # it is the same explosive setting: the first gradient is large


def test_main_writes_plots_csvs_and_a_table(tmp_path, capsys):
    out = tmp_path / "lab"
    argv = ["--out", str(out), "--steps", "40", "--distances", "3,30", "--hidden-size", "8"]
    assert main([*argv, "--quick", "--eval-size", "100", "--no-progress"]) == 0
    for name in ("accuracy.png", "grad_norms.png", "clipping.png"):
        assert (out / name).stat().st_size > 1000
    accuracy = rows(out / "accuracy.csv")
    assert list(accuracy[0]) == ["cell", "distance", "accuracy"]
    assert {(r["cell"], r["distance"]) for r in accuracy} == {
        (c, d) for c in ("seed_rnn_tanh", "seed_gru", "seed_lstm") for d in ("3", "30")
    }
    norms = rows(out / "grad_norms.csv")
    assert list(norms[0]) == ["cell", "stage", "t", "norm"]
    assert {r["stage"] for r in norms} == {"init", "trained"}
    assert len(norms) == 3 * 2 * 32  # cells x stages x Tx (d = 30, plus subject and query)
    clipping = rows(out / "clipping.csv")
    assert {r["clipping"] for r in clipping} == {"on", "off"}
    printed = capsys.readouterr().out
    assert "accuracy" in printed and "GRU" in printed and "clipping off" in printed


@pytest.mark.parametrize(
    "argv",
    [
        ["--steps", "3"],  # no --out
        ["--out", "x", "--cells", "lstm"],  # not a seed cell
        ["--out", "x", "--distances", "5,a"],
        ["--out", "x", "--distances", "0"],
    ],
)
def test_user_errors_exit_2(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "error" in capsys.readouterr().err


@pytest.mark.slow
def test_quick_run_shows_the_effect(tmp_path):
    """The documented --quick run: gated cells carry the number far beyond the basic RNN."""
    assert main(["--out", str(tmp_path), "--quick", "--no-progress"]) == 0
    table = rows(tmp_path / "accuracy.csv")
    acc = {(r["cell"], int(r["distance"])): float(r["accuracy"]) for r in table}
    assert acc["seed_rnn_tanh", 5] > 0.95
    assert acc["seed_rnn_tanh", 100] < 0.7
    assert acc["seed_gru", 50] > 0.95 and acc["seed_lstm", 50] > 0.95
