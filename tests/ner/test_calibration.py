"""Calibrated confidences (ner.calibration): ECE, temperature-scaled CRF, fitting, bundles."""

from __future__ import annotations

import itertools
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from ner.bundle import BundleError, open_bundle, sha256_file
from ner.calibration import (
    CalibrationSet,
    expected_calibration_error,
    fit_temperature,
    read_temperature,
    reliability,
    rewrite_bundle,
    scale_emissions,
    scale_transitions,
)
from ner.cli import main
from ner.data.conll import read_conll
from ner.decode import DISALLOWED, Transitions, constrain, decode_batch, viterbi
from tests.helpers import TINY_DEV

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def _random_crf(rng: np.random.Generator, b: int = 4, t: int = 6, scale: float = 3.0):
    k = len(LABELS)
    em = rng.normal(size=(b, t, k)) * scale
    lengths = rng.integers(1, t + 1, size=b)
    trans = constrain(
        Transitions(rng.normal(size=(k, k)), rng.normal(size=k), rng.normal(size=k)),
        LABELS,
        "iob2",
    )
    return em, lengths, trans


# ------------------------------------------------------------------------------------- ECE


def test_ece_of_hand_made_cases() -> None:
    # bin [0.9, 1]: mean 0.9, half right -> |0.5 - 0.9| * 2/4; bin [0.1, 0.2): 0.1 vs 0 -> 0.1 * 2/4
    assert expected_calibration_error([0.9, 0.9, 0.1, 0.1], [1, 0, 0, 0]) == pytest.approx(0.25)
    # perfectly calibrated bins
    assert expected_calibration_error([0.75] * 4, [1, 1, 1, 0]) == pytest.approx(0.0)
    # a score of exactly 1.0 falls in the last bin, 0.0 in the first
    rel = reliability([1.0, 0.0], [True, False])
    assert rel.bins[-1].count == 1 and rel.bins[0].count == 1 and rel.ece == pytest.approx(0.0)
    assert expected_calibration_error([], []) == 0.0


def test_reliability_table_adds_up() -> None:
    rng = np.random.default_rng(0)
    scores = rng.uniform(size=500)
    correct = rng.uniform(size=500) < scores**2  # overconfident
    rel = reliability(scores, correct)
    assert sum(b.count for b in rel.bins) == 500
    assert rel.accuracy == pytest.approx(correct.mean())
    manual = sum(b.count / 500 * abs(b.accuracy - b.mean_score) for b in rel.bins if b.count)
    assert rel.ece == pytest.approx(manual) and rel.ece > 0.05
    text = rel.format()
    assert "ECE" in text and len(text.splitlines()) == 12
    assert json.loads(json.dumps(rel.to_dict()))["entities"] == 500


def test_reliability_rejects_bad_scores() -> None:
    with pytest.raises(ValueError):
        reliability([1.2], [True])
    with pytest.raises(ValueError):
        reliability([0.5, 0.5], [True])


# ----------------------------------------------------------------------- temperature scaling


def test_temperature_one_is_the_identity() -> None:
    em, lengths, trans = _random_crf(np.random.default_rng(1))
    assert scale_transitions(trans, 1.0) is trans
    a = decode_batch(em, lengths, trans)
    b = decode_batch(scale_emissions(em, 1.0), lengths, scale_transitions(trans, 1.0))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.marginals, y.marginals)


def test_scaling_keeps_disallowed_transitions() -> None:
    _, _, trans = _random_crf(np.random.default_rng(2))
    scaled = scale_transitions(trans, 4.0)
    banned = trans.transitions <= DISALLOWED / 2
    assert banned.any()
    np.testing.assert_array_equal(scaled.transitions[banned], DISALLOWED)
    np.testing.assert_allclose(scaled.transitions[~banned], trans.transitions[~banned] / 4.0)
    np.testing.assert_allclose(
        scaled.start[trans.start > DISALLOWED / 2], trans.start[trans.start > DISALLOWED / 2] / 4.0
    )
    with pytest.raises(ValueError):
        scale_transitions(trans, 0.0)


@pytest.mark.parametrize("temperature", [0.5, 2.0, 7.0])
def test_labels_do_not_change_with_the_temperature(temperature: float) -> None:
    em, lengths, trans = _random_crf(np.random.default_rng(3), b=8, t=9)
    base = viterbi(em, lengths, trans)
    hot = decode_batch(
        scale_emissions(em, temperature), lengths, scale_transitions(trans, temperature)
    )
    for path, dec in zip(base, hot, strict=True):
        np.testing.assert_array_equal(path, dec.tag_ids)


def test_higher_temperature_flattens_the_scores() -> None:
    em, lengths, trans = _random_crf(np.random.default_rng(4), b=6, t=7)
    scores = []
    for t in (0.5, 1.0, 2.0, 5.0):
        decoded = decode_batch(scale_emissions(em, t), lengths, scale_transitions(trans, t))
        scores.append(np.concatenate([d.tag_scores for d in decoded]))
    for sharper, flatter in itertools.pairwise(scores):
        assert flatter.mean() < sharper.mean()


def test_scaled_span_score_matches_brute_force() -> None:
    """P_T(tags of a span) = sum over all sequences with those tags of exp(score / T) / Z_T."""
    rng = np.random.default_rng(5)
    k, length, t = 3, 4, 2.5
    trans = Transitions(rng.normal(size=(k, k)), rng.normal(size=k), rng.normal(size=k))
    em = rng.normal(size=(length, k)) * 2

    def score(y: tuple[int, ...]) -> float:
        s = trans.start[y[0]] + trans.end[y[-1]] + sum(em[i, y[i]] for i in range(length))
        return s + sum(trans.transitions[y[i - 1], y[i]] for i in range(1, length))

    seqs = list(itertools.product(range(k), repeat=length))
    weights = np.array([math.exp(score(y) / t) for y in seqs])
    (dec,) = decode_batch(
        scale_emissions(em[None], t), np.array([length]), scale_transitions(trans, t)
    )
    tags = (2, 0)
    want = sum(w for y, w in zip(seqs, weights, strict=True) if y[1:3] == tags) / weights.sum()
    assert dec.span_score(1, 3, tags) == pytest.approx(want, rel=1e-9)


# ------------------------------------------------------------------------ fitting on a set


@dataclass
class _Batch:
    word_ids: np.ndarray
    lengths: np.ndarray
    words: list[list[str]]


class _OverconfidentTagger:
    """Independent tokens tagged O or B-X whose emission is 3x the true log-odds of B-X: the
    scores are those of the true model at T = 1/3, so the right temperature is 3."""

    labels = ("O", "B-X")
    tag_scheme = "iob2"
    transitions = Transitions.zeros(2)

    def __init__(self, log_odds: dict[str, float]) -> None:
        self.log_odds = log_odds
        self.featurizer = self

    def encode(self, sentences: list[list[str]]) -> _Batch:
        t = max(len(s) for s in sentences)
        ids = np.zeros((len(sentences), t), dtype=np.int64)
        return _Batch(ids, np.array([len(s) for s in sentences]), sentences)

    def emissions(self, batch: _Batch) -> np.ndarray:
        em = np.zeros((*batch.word_ids.shape, 2))
        for i, words in enumerate(batch.words):
            em[i, : len(words), 1] = [3.0 * self.log_odds[w] for w in words]
        return em


def _overconfident_set(seed: int) -> CalibrationSet:
    rng = np.random.default_rng(seed)
    sentences, gold, log_odds = [], [], {}
    for i in range(400):
        words = [f"w{i}_{j}" for j in range(5)]
        tags = []
        for w in words:
            log_odds[w] = rng.normal() * 2.0
            p = 1 / (1 + math.exp(-log_odds[w]))
            tags.append("B-X" if rng.uniform() < p else "O")
        sentences.append(words)
        gold.append(tags)
    return CalibrationSet(_OverconfidentTagger(log_odds), sentences, gold, "iob2", batch_size=64)


def test_fitting_recovers_the_temperature_and_reduces_ece() -> None:
    data = _overconfident_set(0)
    assert len(data) > 200
    before = data.outcomes(1.0).reliability().ece
    t = fit_temperature(data)
    after = data.outcomes(t).reliability().ece
    assert 2.3 < t < 3.9  # the true temperature is 3
    assert before > 0.05 and after < before / 2
    assert data.outcomes(t).nll() < data.outcomes(1.0).nll()
    t_ece = fit_temperature(data, objective="ece")
    assert data.outcomes(t_ece).reliability().ece <= after + 1e-9


def test_read_temperature() -> None:
    assert read_temperature({}, "x") == 1.0
    assert read_temperature({"calibration": {"temperature": 1.5}}, "x") == 1.5
    for bad in (0, -1.0, float("nan"), "2", True):
        with pytest.raises(BundleError):
            read_temperature({"calibration": {"temperature": bad}}, "x")
    with pytest.raises(BundleError):
        read_temperature({"calibration": 2.0}, "x")


# ------------------------------------------------------------------------ real tiny bundles


def _entity_scores(predictor, sentences):  # noqa: ANN001, ANN202
    docs = predictor.predict(sentences)
    return [(e.label, e.token_start, e.token_end, e.score) for d in docs for e in d.entities]


def test_predictor_applies_the_stored_temperature_on_both_backends(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    from ner.tasks import load

    hot = rewrite_bundle(
        tiny_bundle, meta={"calibration": {"temperature": 2.0}}, out=tmp_path / "hot"
    )
    sentences = [s.tokens for s in read_conll(TINY_DEV)]
    plain = load(tiny_bundle, "onnx")
    assert plain.temperature == 1.0
    base = _entity_scores(plain, sentences)
    assert base, "the tiny tagger should find some entities"
    results = {}
    for backend in ("onnx", "torch"):
        p = load(hot, backend)
        assert p.temperature == 2.0 and p.describe()["temperature"] == 2.0
        results[backend] = _entity_scores(p, sentences)
        # same entities (labels never change), lower scores
        assert [e[:3] for e in results[backend]] == [e[:3] for e in base]
        assert all(h[3] <= b[3] + 1e-9 for h, b in zip(results[backend], base, strict=True))
        assert any(h[3] < b[3] - 1e-3 for h, b in zip(results[backend], base, strict=True))
        assert p.predict_tokens(sentences) == plain.predict_tokens(sentences)
    np.testing.assert_allclose(
        [e[3] for e in results["onnx"]], [e[3] for e in results["torch"]], atol=1e-4
    )
    # the scores are those of the CRF at T = 2
    feats = plain.featurizer.encode([sentences[0]])
    em = plain.emissions(feats)
    (dec,) = decode_batch(em / 2.0, feats.lengths, scale_transitions(plain.transitions, 2.0))
    doc = load(hot, "onnx").predict([sentences[0]])[0]
    np.testing.assert_allclose([t.score for t in doc.tokens], dec.tag_scores, atol=1e-6)


def test_ner_calibrate_rewrites_the_bundle(
    tiny_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    model = tmp_path / "model"
    shutil.copytree(tiny_bundle, model)
    weights_before = sha256_file(model / "model.onnx")
    png = tmp_path / "rel.png"
    argv = ["calibrate", "--model", str(model), "--data", str(TINY_DEV), "--no-progress"]
    assert main([*argv, "--reliability-png", str(png)]) == 0
    out = capsys.readouterr()
    assert "ECE" in out.out and "T = " in out.err
    bundle = open_bundle(model)  # checksums still hold
    cal = bundle.meta["calibration"]
    assert cal["temperature"] > 0 and cal["fitted_on"]["name"] == TINY_DEV.name
    assert cal["fitted_on"]["sha256"] == sha256_file(TINY_DEV)
    # (12 entities: the NLL-optimal T need not lower the binned ECE here; see the synthetic test)
    assert 0 <= cal["dev_ece_after"] <= 1 and 0 <= cal["dev_ece_before"] <= 1
    assert bundle.card["calibration"]["dev_ece_after"] == cal["dev_ece_after"]
    assert bundle.card["created"] == open_bundle(tiny_bundle).card["created"]
    assert sha256_file(model / "model.onnx") == weights_before
    assert png.is_file() and png.stat().st_size > 1000

    # `ner eval` reports the calibration of the scores it serves
    report = tmp_path / "eval.json"
    assert (
        main(["eval", "--model", str(model), "--data", str(TINY_DEV), "--json", str(report)]) == 0
    )
    result = json.loads(report.read_text())["calibration"]
    assert result["temperature"] == pytest.approx(cal["temperature"])
    assert result["ece"] == pytest.approx(cal["dev_ece_after"], abs=1e-6)
    assert result["ece_uncalibrated"] == pytest.approx(cal["dev_ece_before"], abs=1e-6)
    assert sum(b["count"] for b in result["bins"]) == result["entities"] == cal["entities"]
