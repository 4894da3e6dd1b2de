"""ner.decode against brute-force enumeration of every tag sequence (itertools.product)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ner.decode import (
    DISALLOWED,
    Transitions,
    constrain,
    constraint_mask,
    decode_batch,
    forward_backward,
    is_valid_sequence,
    log_softmax,
    span_score,
    viterbi,
)

IOB2 = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
BIOES = ["O", "B-PER", "I-PER", "E-PER", "S-PER"]


def random_transitions(rng: np.random.Generator, k: int, scale: float = 1.0) -> Transitions:
    return Transitions(
        rng.normal(size=(k, k)) * scale, rng.normal(size=k) * scale, rng.normal(size=k) * scale
    )


def sequence_scores(emissions: np.ndarray, trans: Transitions) -> dict[tuple[int, ...], float]:
    """Score of every tag sequence of one sentence ``emissions (L, K)``."""
    length, k = emissions.shape
    out = {}
    for seq in itertools.product(range(k), repeat=length):
        score = trans.start[seq[0]] + trans.end[seq[-1]]
        score += sum(emissions[t, y] for t, y in enumerate(seq))
        score += sum(trans.transitions[a, b] for a, b in itertools.pairwise(seq))
        out[seq] = score
    return out


def brute_force(emissions: np.ndarray, trans: Transitions):
    """(best sequence, log Z, probability of every sequence) by enumeration."""
    scores = sequence_scores(emissions, trans)
    values = np.array(list(scores.values()))
    log_z = np.log(np.exp(values - values.max()).sum()) + values.max()
    probs = {seq: float(np.exp(s - log_z)) for seq, s in scores.items()}
    best = max(scores, key=scores.get)
    return np.array(best), log_z, probs


@pytest.mark.parametrize(("k", "length"), [(2, 1), (3, 2), (3, 4), (4, 3), (5, 4)])
def test_matches_brute_force(k: int, length: int) -> None:
    rng = np.random.default_rng(k * 10 + length)
    trans = random_transitions(rng, k)
    emissions = rng.normal(size=(1, length, k)) * 2
    (decoded,) = decode_batch(emissions, np.array([length]), trans)
    best, log_z, probs = brute_force(emissions[0], trans)

    np.testing.assert_array_equal(decoded.tag_ids, best)
    assert decoded.log_z == pytest.approx(log_z, abs=1e-10)
    expected = np.zeros((length, k))
    for seq, p in probs.items():
        expected[np.arange(length), list(seq)] += p
    np.testing.assert_allclose(decoded.marginals, expected, atol=1e-10)
    np.testing.assert_allclose(decoded.marginals.sum(1), 1.0, atol=1e-10)
    assert decoded.sequence_score() == pytest.approx(probs[tuple(best)], abs=1e-10)


@pytest.mark.parametrize(("k", "length"), [(3, 1), (3, 4), (4, 4)])
def test_span_score_matches_brute_force(k: int, length: int) -> None:
    rng = np.random.default_rng(7 + k + length)
    trans = random_transitions(rng, k)
    emissions = rng.normal(size=(length, k)) * 2
    (decoded,) = decode_batch(emissions[None], np.array([length]), trans)
    _, _, probs = brute_force(emissions, trans)
    for start in range(length):
        for end in range(start + 1, length + 1):
            for tags in itertools.product(range(k), repeat=end - start):
                expected = sum(p for seq, p in probs.items() if seq[start:end] == tags)
                assert decoded.span_score(start, end, tags) == pytest.approx(expected, abs=1e-10)
            # default tags = the decoded ones; the free function gives the same
            decoded_tags = tuple(decoded.tag_ids[start:end])
            expected = sum(p for seq, p in probs.items() if seq[start:end] == decoded_tags)
            assert decoded.span_score(start, end) == pytest.approx(expected, abs=1e-10)
            assert span_score(emissions, trans, start, end, decoded_tags) == pytest.approx(
                expected, abs=1e-10
            )
    # one token: the span score is the marginal
    for t in range(length):
        assert decoded.span_score(t, t + 1) == pytest.approx(decoded.tag_scores[t], abs=1e-12)


def test_span_score_rejects_bad_spans() -> None:
    (decoded,) = decode_batch(np.zeros((1, 3, 2)), np.array([3]), Transitions.zeros(2))
    for start, end in [(0, 0), (2, 1), (-1, 2), (0, 4)]:
        with pytest.raises(ValueError, match="out of range"):
            decoded.span_score(start, end)
    with pytest.raises(ValueError, match="tags for a span"):
        decoded.span_score(0, 2, [0])
    with pytest.raises(ValueError, match="tag ids"):
        decoded.span_score(0, 2, [0, 2])


def test_padded_batch_equals_per_sentence() -> None:
    rng = np.random.default_rng(0)
    k = 4
    trans = random_transitions(rng, k)
    lengths = np.array([5, 0, 1, 3, 5])
    emissions = rng.normal(size=(len(lengths), 5, k))
    for b, n in enumerate(lengths):
        emissions[b, n:] = rng.normal(size=(5 - n, k)) * 1e3  # garbage in the padding
    batch = decode_batch(emissions, lengths, trans)
    paths = viterbi(emissions, lengths, trans)
    marginals = forward_backward(emissions, lengths, trans)
    for b, n in enumerate(lengths):
        (alone,) = decode_batch(emissions[b : b + 1, :n], np.array([n]), trans)
        np.testing.assert_array_equal(batch[b].tag_ids, alone.tag_ids)
        np.testing.assert_array_equal(paths[b], alone.tag_ids)
        np.testing.assert_allclose(batch[b].marginals, alone.marginals, atol=1e-12)
        np.testing.assert_allclose(marginals[b], alone.marginals, atol=1e-12)
        assert batch[b].log_z == pytest.approx(alone.log_z, abs=1e-12)
        assert batch[b].tag_ids.shape == (n,)
        assert batch[b].marginals.shape == (n, k)


def test_length_zero_and_empty_batch() -> None:
    trans = Transitions.zeros(3)
    for emissions, lengths in [
        (np.zeros((2, 0, 3)), np.array([0, 0])),
        (np.ones((2, 4, 3)), np.array([0, 0])),
        (np.zeros((0, 0, 3)), np.zeros(0, dtype=np.int64)),
        (np.zeros((0, 5, 3)), np.array([])),
    ]:
        out = decode_batch(emissions, lengths, trans)
        assert len(out) == len(lengths)
        for d in out:
            assert d.tag_ids.shape == (0,) and d.tag_ids.dtype == np.int64
            assert d.marginals.shape == (0, 3)
            assert d.tag_scores.shape == (0,)
            assert d.log_z == 0.0 and d.sequence_score() == 1.0
        assert all(p.shape == (0,) for p in viterbi(emissions, lengths, trans))
        assert all(m.shape == (0, 3) for m in forward_backward(emissions, lengths, trans))


def test_length_one() -> None:
    rng = np.random.default_rng(1)
    trans = random_transitions(rng, 3)
    emissions = rng.normal(size=(1, 1, 3))
    (d,) = decode_batch(emissions, np.array([1]), trans)
    scores = trans.start + emissions[0, 0] + trans.end
    assert d.tag_ids.tolist() == [int(scores.argmax())]
    np.testing.assert_allclose(d.marginals[0], np.exp(scores) / np.exp(scores).sum())


def test_bad_inputs_raise() -> None:
    trans = Transitions.zeros(3)
    with pytest.raises(ValueError, match=r"\(B, T, K\)"):
        viterbi(np.zeros((2, 3)), np.array([1, 1]), trans)
    with pytest.raises(ValueError, match="tags"):
        viterbi(np.zeros((1, 2, 4)), np.array([2]), trans)
    with pytest.raises(ValueError, match="lengths"):
        viterbi(np.zeros((1, 2, 3)), np.array([3]), trans)
    with pytest.raises(ValueError, match="lengths"):
        viterbi(np.zeros((2, 2, 3)), np.array([1]), trans)
    with pytest.raises(ValueError, match="lengths"):
        viterbi(np.zeros((1, 2, 3)), np.array([1.5]), trans)
    with pytest.raises(ValueError, match="transitions"):
        Transitions(np.zeros((3, 2)), np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="finite"):
        Transitions(np.full((2, 2), -np.inf), np.zeros(2), np.zeros(2))


def test_large_scores_stay_finite() -> None:
    rng = np.random.default_rng(2)
    trans = random_transitions(rng, 4, scale=500.0)
    emissions = rng.normal(size=(2, 6, 4)) * 1e4
    for d in decode_batch(emissions, np.array([6, 3]), trans):
        assert np.isfinite(d.marginals).all() and np.isfinite(d.log_z)
        np.testing.assert_allclose(d.marginals.sum(1), 1.0, atol=1e-9)
        assert 0.0 <= d.sequence_score() <= 1.0


def test_softmax_head_is_zero_transitions_over_log_softmax() -> None:
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(2, 5, 4)) * 3
    lengths = np.array([5, 2])
    probs = np.exp(log_softmax(logits))
    np.testing.assert_allclose(probs.sum(-1), 1.0)
    for b, d in enumerate(decode_batch(log_softmax(logits), lengths, Transitions.zeros(4))):
        n = lengths[b]
        np.testing.assert_array_equal(d.tag_ids, logits[b, :n].argmax(-1))
        np.testing.assert_allclose(d.marginals, probs[b, :n], atol=1e-12)
        assert d.log_z == pytest.approx(0.0, abs=1e-12)
        # a span's score is the product of its tokens' probabilities
        assert d.span_score(0, 2) == pytest.approx(np.prod(d.tag_scores[:2]))


def test_constrained_softmax_head_repairs_iob2() -> None:
    # per-token argmax would give O I-LOC; the best valid sequence is B-LOC I-LOC or O O
    log_probs = np.log(np.array([[[0.6, 0.3, 0.1, 0.0, 0.0], [0.1, 0.0, 0.9, 0.0, 0.0]]]) + 1e-9)
    trans = constrain(Transitions.zeros(5), IOB2, "iob2")
    (d,) = decode_batch(log_probs, np.array([2]), trans)
    assert [IOB2[i] for i in d.tag_ids] == ["B-LOC", "I-LOC"]
    assert d.marginals[:, 2].sum() == pytest.approx(d.marginals[1, 2])  # never I first
    assert d.marginals[0, 2] < 1e-12


def test_constraint_mask_iob2() -> None:
    allowed, start, end = constraint_mask(IOB2, "iob2")
    names = {(a, b) for i, a in enumerate(IOB2) for j, b in enumerate(IOB2) if allowed[i, j]}
    for a in IOB2:
        for b in IOB2:
            ok = not b.startswith("I-") or a in (f"B-{b[2:]}", b)
            assert ((a, b) in names) == ok, (a, b)
    assert start.tolist() == [True, True, False, True, False]
    assert end.all()


def test_constraint_mask_bioes() -> None:
    labels = ["O", "B-A", "I-A", "E-A", "S-A", "B-B", "I-B", "E-B", "S-B"]
    allowed, start, end = constraint_mask(labels, "bioes")
    expected = {
        "O": {"O", "B-A", "S-A", "B-B", "S-B"},
        "B-A": {"I-A", "E-A"},
        "I-A": {"I-A", "E-A"},
        "E-A": {"O", "B-A", "S-A", "B-B", "S-B"},
        "S-A": {"O", "B-A", "S-A", "B-B", "S-B"},
        "B-B": {"I-B", "E-B"},
        "I-B": {"I-B", "E-B"},
    }
    expected["E-B"] = expected["S-B"] = expected["O"]
    for i, a in enumerate(labels):
        assert {labels[j] for j in np.flatnonzero(allowed[i])} == expected[a], a
    assert [labels[j] for j in np.flatnonzero(start)] == ["O", "B-A", "S-A", "B-B", "S-B"]
    assert [labels[j] for j in np.flatnonzero(end)] == ["O", "E-A", "S-A", "E-B", "S-B"]


@pytest.mark.parametrize("scheme", ["iob1", "binary"])
def test_constraint_mask_allows_everything(scheme: str) -> None:
    labels = ["0", "1"] if scheme == "binary" else ["O", "I-PER", "B-PER"]
    for mask in constraint_mask(labels, scheme):
        assert mask.all()


def test_constraint_mask_errors() -> None:
    with pytest.raises(ValueError, match="unknown tag scheme"):
        constraint_mask(IOB2, "bilou")
    with pytest.raises(ValueError, match="not a iob2 tag"):
        constraint_mask(["O", "E-PER"], "iob2")
    with pytest.raises(ValueError, match="cannot parse tag"):
        constraint_mask(["O", "PER"], "bioes")
    with pytest.raises(ValueError, match="labels"):
        constrain(Transitions.zeros(3), IOB2, "iob2")


def test_constrain_sets_disallowed_and_keeps_the_rest() -> None:
    rng = np.random.default_rng(4)
    trans = random_transitions(rng, len(IOB2))
    out = constrain(trans, IOB2, "iob2")
    allowed, start, end = constraint_mask(IOB2, "iob2")
    np.testing.assert_array_equal(out.transitions[allowed], trans.transitions[allowed])
    assert (out.transitions[~allowed] == DISALLOWED).all()
    assert (out.start[~start] == DISALLOWED).all() and (
        out.start[start] == trans.start[start]
    ).all()
    np.testing.assert_array_equal(out.end, trans.end)


def _valid_by_grammar(tags: list[str], scheme: str) -> bool:
    """An independent, string-level check of the scheme's grammar."""
    prev = "O"
    for tag in tags:
        if scheme == "iob2" and tag.startswith("I-") and prev not in (f"B-{tag[2:]}", tag):
            return False
        if scheme == "bioes":
            open_entity = prev[:2] in ("B-", "I-")
            continues = tag[:2] in ("I-", "E-") and prev[2:] == tag[2:]
            if open_entity != continues:
                return False
        prev = tag
    return not (scheme == "bioes" and prev[:2] in ("B-", "I-"))


LABEL_SETS = {
    "iob2": ["O", "B-LOC", "I-LOC", "B-PER", "I-PER", "B-ORG", "I-ORG"],
    "bioes": ["O", "B-LOC", "I-LOC", "E-LOC", "S-LOC", "B-PER", "I-PER", "E-PER", "S-PER"],
}


@st.composite
def constrained_problem(draw):
    scheme = draw(st.sampled_from(["iob2", "bioes"]))
    labels = LABEL_SETS[scheme]
    order = draw(st.permutations(range(len(labels))))  # tag ids need not follow the usual order
    labels = [labels[i] for i in order]
    k = len(labels)
    b = draw(st.integers(1, 3))
    t = draw(st.integers(0, 7))
    floats = st.floats(-10, 10, allow_nan=False, width=32)
    emissions = draw(hnp.arrays(np.float64, (b, t, k), elements=floats))
    trans = Transitions(
        draw(hnp.arrays(np.float64, (k, k), elements=floats)),
        draw(hnp.arrays(np.float64, (k,), elements=floats)),
        draw(hnp.arrays(np.float64, (k,), elements=floats)),
    )
    lengths = np.array(draw(st.lists(st.integers(0, t), min_size=b, max_size=b)))
    return scheme, labels, emissions, lengths, trans


@settings(max_examples=200, deadline=None)
@given(constrained_problem())
def test_constrained_decoding_never_emits_invalid_sequences(problem) -> None:
    scheme, labels, emissions, lengths, trans = problem
    constrained = constrain(trans, labels, scheme)
    for d, n in zip(decode_batch(emissions, lengths, constrained), lengths, strict=True):
        tags = [labels[i] for i in d.tag_ids]
        assert len(tags) == n
        assert _valid_by_grammar(tags, scheme), tags
        assert is_valid_sequence(d.tag_ids, labels, scheme)
        if n:
            _, allowed_start, allowed_end = constraint_mask(labels, scheme)
            assert d.marginals[0, ~allowed_start].max(initial=0.0) < 1e-12
            assert d.marginals[-1, ~allowed_end].max(initial=0.0) < 1e-12
            assert np.isfinite(d.marginals).all()
            np.testing.assert_allclose(d.marginals.sum(1), 1.0, atol=1e-9)
            assert d.sequence_score() > 0.0


def test_is_valid_sequence() -> None:
    ids = {tag: i for i, tag in enumerate(IOB2)}
    assert is_valid_sequence([], IOB2, "iob2")
    assert is_valid_sequence([ids["B-PER"], ids["I-PER"], ids["O"]], IOB2, "iob2")
    assert not is_valid_sequence([ids["O"], ids["I-PER"]], IOB2, "iob2")
    assert not is_valid_sequence([ids["B-LOC"], ids["I-PER"]], IOB2, "iob2")
    assert is_valid_sequence([ids["O"], ids["I-PER"]], IOB2, "iob1")
    assert not is_valid_sequence([1], BIOES, "bioes")  # B-PER cannot end a sentence


def test_transitions_json_round_trip() -> None:
    trans = random_transitions(np.random.default_rng(5), 3)
    again = Transitions.from_dict(json.loads(json.dumps(trans.to_dict())))
    for name in ("transitions", "start", "end"):
        np.testing.assert_array_equal(getattr(again, name), getattr(trans, name))
    with pytest.raises(ValueError, match="bad transitions"):
        Transitions.from_dict({"start": [0.0]})
    assert not trans.transitions.flags.writeable


def test_imports_without_torch() -> None:
    code = "import sys, ner.decode; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
