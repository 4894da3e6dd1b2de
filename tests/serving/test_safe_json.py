"""serving.errors.safe_json: orjson's bytes, the standard encoder's values, its fallbacks."""

from __future__ import annotations

import json
import math
import random

import pytest

from serving.errors import safe_json

TEXTS = ["é", "\u2028", "\x00", "😀", '"\\']


def test_answers_read_back_as_the_same_values() -> None:
    rng = random.Random(0)
    floats = [rng.random() * 10 ** rng.randint(-12, 12) for _ in range(2000)]
    floats += [0.0, -0.0, 1e-05, 5e-324, 1.7976931348623157e308, 0.1]
    body = {
        "model": {"name": "conll2003-en", "version": "1.1.0"},
        "tokens": [
            {"text": t, "start": i, "end": i + 1, "score": f, "is_name": i % 2}
            for i, (t, f) in enumerate(zip(TEXTS * 500, floats, strict=False))
        ],
        "scores": floats,
        "flag": True,
        "none": None,
    }
    out = safe_json(body)
    standard = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    assert json.loads(out) == body == json.loads(standard)
    assert b" " not in out.replace(b"\\", b"")  # compact
    assert out.decode("utf-8")  # UTF-8, not ASCII-escaped
    assert "😀".encode() in out


def test_what_orjson_refuses_falls_back_to_the_standard_encoder() -> None:
    # a lone surrogate: ASCII-escaped, still valid UTF-8 JSON
    out = safe_json({"text": "ab\ud800"})
    assert out == b'{"text": "ab\\ud800"}'
    assert json.loads(out) == {"text": "ab\ud800"}
    # an integer over 64 bits, a key that is not a string
    assert json.loads(safe_json({"n": 2**70})) == {"n": 2**70}
    assert json.loads(safe_json({1: "a"})) == {"1": "a"}
    with pytest.raises(TypeError):
        safe_json({"x": object()})


def test_non_finite_floats_are_null() -> None:
    assert json.loads(safe_json({"p": math.nan, "q": math.inf})) == {"p": None, "q": None}
