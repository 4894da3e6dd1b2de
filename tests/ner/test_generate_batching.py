"""Several generate requests in one sampling loop (``generate_checked``): each request's samples
are exactly those it gets alone (its own settings, class and seeded random stream), rows stop
being stepped once they end, and bad requests are refused by ``prepare_sample`` as before."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ner.generate import MAX_SAMPLES, GenerationError, SampleRequest
from ner.tasks import load
from tests.lm_helpers import build_tiny_lm


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("generate-batching")
    return {
        "char": build_tiny_lm(root / "char", "char", steps=30),
        "cond": build_tiny_lm(root / "cond", "word", conditioning="both", cell="gru", steps=30),
    }


class StepCounting:
    """A predictor whose ``_step`` records each run's batch size (rows), then runs it."""

    def __init__(self, predictor: Any) -> None:
        self.predictor = predictor
        self.rows: list[int] = []
        step = predictor._step

        def counted(vectors: np.ndarray, state: np.ndarray, class_id: Any) -> Any:
            self.rows.append(vectors.shape[0])
            return step(vectors, state, class_id)

        predictor._step = counted


def _alone_and_together(predictor: Any, asks: list[tuple[int, dict[str, Any]]]) -> None:
    requests = [predictor.prepare_sample(n, **kwargs) for n, kwargs in asks]
    together = predictor.generate_checked(requests)
    assert len(together) == len(asks)
    for (n, kwargs), got in zip(asks, together, strict=True):
        assert len(got) == n
        assert got == predictor.generate_tokens(n, **kwargs), kwargs


def test_each_request_gets_its_samples_alone(paths: dict[str, Path]) -> None:
    predictor = load(paths["char"])
    prefixes = ["", "t", "ty", "saurus", "brachio"]
    asks = [
        (
            1 + i % 7,
            {
                "seed": 100 + i,
                "temperature": (0.3, 0.8, 1.0, 1.7)[i % 4],
                "top_k": (None, 1, 3, 8, None)[i % 5],
                "top_p": (1.0, 0.9, 0.6)[i % 3],
                "prefix": prefixes[i % len(prefixes)],
                "max_length": (20, 1, 5, 60, 3, 12)[i % 6],
                "allow_unk": i % 4 == 3,
            },
        )
        for i in range(24)
    ]
    asks.append((MAX_SAMPLES, {"seed": 0, "max_length": 30}))  # a full request beside them
    _alone_and_together(predictor, asks)


def test_each_row_keeps_its_class(paths: dict[str, Path]) -> None:
    predictor = load(paths["cond"])
    asks = [
        (4, {"seed": 1, "class_": "negative", "temperature": 0.7}),
        (4, {"seed": 1, "class_": "positive", "temperature": 0.7}),
        (2, {"seed": 2, "class_": 1, "prefix": "a great", "top_k": 5}),
        (3, {"seed": 3, "class_": 0, "prefix": "the film is dull and", "max_length": 4}),
        (1, {"seed": 4, "class_": "positive", "top_p": 0.8, "max_length": 1}),
        (5, {"seed": 5, "class_": "negative", "prefix": "bad", "temperature": 1.5}),
    ]
    _alone_and_together(predictor, asks)
    neg, pos = predictor.generate_checked(
        [predictor.prepare_sample(4, **kwargs) for _, kwargs in asks[:2]]
    )
    assert neg != pos  # the same seed under another class: the class reached its rows


def test_a_request_is_the_same_whatever_its_batch_mates(paths: dict[str, Path]) -> None:
    predictor = load(paths["char"])
    mine = predictor.prepare_sample(5, seed=42, temperature=1.2, prefix="ra", max_length=15)
    alone = predictor.generate_checked([mine])[0]
    for mates in (
        [predictor.prepare_sample(3, seed=s, prefix="ty" * s) for s in range(4)],
        [predictor.prepare_sample(64, seed=9, temperature=2.0, max_length=40)],
        [predictor.prepare_sample(1, seed=7, max_length=1)] * 3,
    ):
        assert predictor.generate_checked([*mates, mine])[-1] == alone
        assert predictor.generate_checked([mine, *mates])[0] == alone


def test_finished_rows_are_not_stepped(paths: dict[str, Path]) -> None:
    predictor = load(paths["char"])
    spy = StepCounting(predictor)
    short = predictor.prepare_sample(3, seed=0, max_length=1)  # done after its first draw
    long = predictor.prepare_sample(2, seed=0, prefix="ty", max_length=200)
    short_samples, long_samples = predictor.generate_checked([short, long])
    assert all(len(s) <= 1 for s in short_samples)
    # prefixes: START for both rows, then "t", "y" for the long request's row alone
    assert spy.rows[:3] == [2, 1, 1]
    # sampling: after the first draw only the long request's rows, fewer as each ends
    sampled = spy.rows[3:]
    assert sampled and max(sampled) <= 2
    assert sampled == sorted(sampled, reverse=True)
    drawn = max(len(s) for s in long_samples) - 2  # the longest sample's tokens after "ty"
    # one step after each drawn token but the last (<EOS> or max_length ends the row)
    assert len(sampled) == (drawn if drawn < 200 else 199)


def test_no_requests_no_runs(paths: dict[str, Path]) -> None:
    predictor = load(paths["char"])
    spy = StepCounting(predictor)
    assert predictor.generate_checked([]) == []
    assert spy.rows == []


def test_prepare_sample_holds_the_checked_settings(paths: dict[str, Path]) -> None:
    char, cond = load(paths["char"]), load(paths["cond"])
    request = char.prepare_sample(3, prefix="ty", seed=5, top_k=2)
    assert request == SampleRequest(
        n=3,
        prefix=("t", "y"),
        class_id=None,
        seed=5,
        max_length=char.default_length,
        top_k=2,
    )
    assert cond.prepare_sample(class_="positive", prefix="A great").class_id == 1
    assert cond.prepare_sample(class_="positive", prefix="A great").prefix == ("a", "great")


def test_prepare_sample_checks_classes(paths: dict[str, Path]) -> None:
    predictor = load(paths["cond"])
    for bad in (None, "neutral", 2, -1, True):
        with pytest.raises(GenerationError, match="class") as info:
            predictor.prepare_sample(class_=bad)
        assert info.value.field == "class"
