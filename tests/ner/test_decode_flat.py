"""The batch-wide decoders (one loop over time for all sentences) against a per-sentence reference.

The reference below is the textbook recursion for one sentence at a time, in log space, with
explicit loops: Viterbi with back-pointers (first maximum wins ties) and forward-backward with
logsumexp. The vectorised ``ner.decode`` must give the same paths exactly, and the same marginals,
log Z and span scores to float rounding, for any mix of lengths (0 and 1 included).
"""

from __future__ import annotations

import numpy as np
import pytest

from ner.decode import (
    DISALLOWED,
    Packing,
    Transitions,
    constrain,
    decode_batch,
    decode_flat,
    viterbi,
    viterbi_flat,
)


def _lse(x: np.ndarray) -> float:
    m = x.max()
    return float(m + np.log(np.exp(x - m).sum()))


def reference_viterbi(em: np.ndarray, trans: Transitions) -> list[int]:
    """One sentence ``em (L, K)``: the best path, back-pointers taking the first maximum."""
    length, k = em.shape
    if length == 0:
        return []
    score = trans.start + em[0]
    pointers = []
    for t in range(1, length):
        cand = score[:, None] + trans.transitions  # (K_prev, K)
        prev = [int(np.argmax(cand[:, j])) for j in range(k)]
        pointers.append(prev)
        score = np.array([cand[prev[j], j] for j in range(k)]) + em[t]
    path = [int(np.argmax(score + trans.end))]
    for prev in reversed(pointers):
        path.append(prev[path[-1]])
    return path[::-1]


def reference_forward_backward(em: np.ndarray, trans: Transitions):
    """One sentence: (log alpha (L, K), log beta (L, K), log Z)."""
    length, k = em.shape
    alpha, beta = np.zeros((length, k)), np.zeros((length, k))
    if length == 0:
        return alpha, beta, 0.0
    alpha[0] = trans.start + em[0]
    for t in range(1, length):
        alpha[t] = [_lse(alpha[t - 1] + trans.transitions[:, j]) for j in range(k)] + em[t]
    beta[-1] = trans.end
    for t in range(length - 2, -1, -1):
        beta[t] = [_lse(trans.transitions[i] + em[t + 1] + beta[t + 1]) for i in range(k)]
    return alpha, beta, _lse(alpha[-1] + trans.end)


def reference_span_log_prob(em, trans, path, alpha, beta, log_z, start, end) -> float:
    inner = sum(
        trans.transitions[path[t - 1], path[t]] + em[t, path[t]] for t in range(start + 1, end)
    )
    return alpha[start, path[start]] + inner + beta[end - 1, path[end - 1]] - log_z


def random_problem(rng: np.random.Generator, k: int, lengths: list[int], scale: float, ties: bool):
    trans = Transitions(
        rng.normal(size=(k, k)) * scale, rng.normal(size=k) * scale, rng.normal(size=k) * scale
    )
    em = rng.normal(size=(sum(lengths), k)) * scale
    if ties:  # small integers: equal sums are common, so the tie-break is tested
        trans = Transitions(*(np.round(a) for a in (trans.transitions, trans.start, trans.end)))
        em = np.round(em)
    return em, np.array(lengths, dtype=np.int64), trans


CASES = [
    # (K, lengths, scale, ties)
    (1, [0, 1, 3], 1.0, False),
    (3, [1], 1.0, False),
    (3, [0], 1.0, False),
    (3, [], 1.0, False),
    (4, [5, 0, 1, 3, 5, 2, 0], 1.0, False),
    (5, [1, 1, 1, 2, 7, 4, 4, 0, 9], 2.0, False),
    (3, [6, 2, 0, 1, 6, 3], 1.0, True),
    (4, [8, 1, 0, 8, 5], 1.5, True),
    (4, [6, 3, 1, 0], 300.0, False),  # beyond the scaled range: the log-space recursion
]


@pytest.mark.parametrize(("k", "lengths", "scale", "ties"), CASES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batch_decoding_equals_per_sentence_reference(
    k: int, lengths: list[int], scale: float, ties: bool, seed: int
) -> None:
    rng = np.random.default_rng(seed * 100 + k)
    em, lens, trans = random_problem(rng, k, lengths, scale, ties)
    paths = viterbi_flat(em, lens, trans)
    dec = decode_flat(em, lens, trans)
    np.testing.assert_array_equal(paths, dec.tag_ids)
    marginals, scores = dec.marginals(), dec.tag_scores()
    a = 0
    for b, n in enumerate(lengths):
        sent = em[a : a + n]
        path = reference_viterbi(sent, trans)
        assert paths[a : a + n].tolist() == path
        alpha, beta, log_z = reference_forward_backward(sent, trans)
        assert dec.log_z[b] == pytest.approx(log_z, rel=1e-9, abs=1e-9)
        np.testing.assert_allclose(dec.log_alpha[a : a + n], alpha, rtol=1e-9, atol=1e-8)
        np.testing.assert_allclose(dec.log_beta[a : a + n], beta, rtol=1e-9, atol=1e-8)
        expected = np.exp(alpha + beta - log_z)
        np.testing.assert_allclose(marginals[a : a + n], np.minimum(expected, 1.0), atol=1e-9)
        np.testing.assert_allclose(scores[a : a + n], expected[np.arange(n), path], atol=1e-9)
        spans = [(s, e) for s in range(n) for e in range(s + 1, n + 1)]
        if spans:
            got = dec.span_log_probs(
                np.array([a + s for s, _ in spans]), np.array([a + e for _, e in spans])
            )
            want = [
                reference_span_log_prob(sent, trans, path, alpha, beta, log_z, s, e)
                for s, e in spans
            ]
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-8)
        a += n


@pytest.mark.parametrize("seed", range(5))
def test_padded_api_equals_the_flat_one(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k, t = 5, 7
    lengths = rng.integers(0, t + 1, size=9)
    padded = rng.normal(size=(9, t, k)) * 3
    padded[np.arange(t) >= lengths[:, None]] = 1e3  # garbage in the padding
    trans = constrain(
        Transitions(rng.normal(size=(k, k)), rng.normal(size=k), rng.normal(size=k)),
        ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"],
        "iob2",
    )
    flat = padded[np.arange(t) < lengths[:, None]]
    tags = viterbi_flat(flat, lengths, trans)
    dec = decode_flat(flat, lengths, trans)
    ends = np.cumsum(lengths)
    for (a, b), path, one in zip(
        zip(ends - lengths, ends, strict=True),
        viterbi(padded, lengths, trans),
        decode_batch(padded, lengths, trans),
        strict=True,
    ):
        np.testing.assert_array_equal(path, tags[a:b])
        np.testing.assert_array_equal(one.tag_ids, tags[a:b])
        np.testing.assert_array_equal(one.marginals, dec.marginals()[a:b])
        for s in range(b - a):
            assert one.span_score(s, b - a) == pytest.approx(
                float(dec.span_scores(np.array([a + s]), np.array([b]))[0]), abs=1e-12
            )


def test_packing_layout() -> None:
    lengths = np.array([2, 0, 3, 1, 3])
    p = Packing.of(lengths)
    assert p.order.tolist() == [2, 4, 0, 3, 1]  # longest first, ties in input order
    assert p.batch_sizes.tolist() == [4, 3, 2]
    assert p.offsets.tolist() == [0, 4, 7, 9]
    flat = np.arange(9)
    packed = p.pack(flat)
    # step 0: the first tokens of sentences 2, 4, 0, 3; step 1: the second ones of 2, 4, 0;
    # step 2: the third ones of 2 and 4 (tokens numbered in input order)
    assert packed.tolist() == [2, 6, 0, 5, 3, 7, 1, 4, 8]
    np.testing.assert_array_equal(p.unpack(packed), flat)
    empty = Packing.of(np.zeros(0, dtype=np.int64))
    assert empty.batch_sizes.size == 0 and empty.rows.size == 0


def test_flat_inputs_are_checked() -> None:
    trans = Transitions.zeros(3)
    with pytest.raises(ValueError, match=r"\(N, K\)"):
        viterbi_flat(np.zeros((1, 2, 3)), np.array([2]), trans)
    with pytest.raises(ValueError, match="add up"):
        viterbi_flat(np.zeros((4, 3)), np.array([2, 1]), trans)
    with pytest.raises(ValueError, match="tags"):
        decode_flat(np.zeros((2, 4)), np.array([2]), trans)
    with pytest.raises(ValueError, match="negative"):
        decode_flat(np.zeros((2, 3)), np.array([3, -1]), trans)


def test_disallowed_transitions_never_decoded_in_a_large_batch() -> None:
    rng = np.random.default_rng(9)
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    trans = constrain(Transitions(*(rng.normal(size=s) for s in [(5, 5), 5, 5])), labels, "iob2")
    lengths = rng.integers(0, 40, size=300)
    em = rng.normal(size=(int(lengths.sum()), 5)) * 4
    tags = viterbi_flat(em, lengths, trans)
    a = 0
    for n in lengths.tolist():
        path = tags[a : a + n]
        if n:
            assert trans.start[path[0]] > DISALLOWED / 2
            assert (trans.transitions[path[:-1], path[1:]] > DISALLOWED / 2).all()
        a += n
