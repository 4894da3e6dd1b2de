"""ner.nn.crf against brute-force enumeration of every tag sequence, and against ner.decode."""

from __future__ import annotations

import itertools
import math

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ner.decode import DISALLOWED, constrain, constraint_mask, decode_batch, is_valid_sequence
from ner.nn.crf import CRF, CRFConfig

torch.set_num_threads(1)

IOB2 = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
BIOES = ["O", "B-PER", "I-PER", "E-PER", "S-PER"]


def make_crf(k: int, seed: int, **constraints) -> CRF:
    torch.manual_seed(seed)
    crf = CRF(CRFConfig(num_tags=k), **constraints).double()
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_()
    return crf


def brute_force(crf: CRF, emissions: torch.Tensor) -> dict[tuple[int, ...], float]:
    """Score of every tag sequence of one sentence ``emissions (L, K)`` (constrained scores)."""
    trans, start, end = (x.detach().double() for x in crf.scores())
    length, k = emissions.shape
    out = {}
    for seq in itertools.product(range(k), repeat=length):
        score = start[seq[0]] + end[seq[-1]] + sum(emissions[t, y] for t, y in enumerate(seq))
        score += sum((trans[a, b] for a, b in itertools.pairwise(seq)), torch.zeros(()))
        out[seq] = float(score)
    return out


def log_sum_exp(values) -> float:
    values = list(values)
    m = max(values)
    return m + math.log(sum(math.exp(v - m) for v in values))


def padded_batch(k: int, lengths: list[int], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    t = max(lengths, default=0)
    emissions = torch.randn(len(lengths), t, k, generator=g, dtype=torch.float64) * 2
    tags = torch.randint(0, k, (len(lengths), t), generator=g)
    for b, n in enumerate(lengths):
        emissions[b, n:] = 1e3  # the padding must not matter
        tags[b, n:] = -100
    return emissions, tags


@pytest.mark.parametrize(("k", "lengths"), [(3, [4, 1, 3, 2]), (4, [3, 3]), (2, [1]), (5, [3, 2])])
def test_nll_and_log_z_match_brute_force(k: int, lengths: list[int]) -> None:
    crf = make_crf(k, seed=k)
    emissions, tags = padded_batch(k, lengths, seed=k)
    lens = torch.tensor(lengths)
    nll = crf.nll(emissions, tags, lens)
    log_z = crf.log_partition(emissions, lens)
    assert nll.shape == (len(lengths),)
    for b, n in enumerate(lengths):
        scores = brute_force(crf, emissions[b, :n])
        expected_z = log_sum_exp(scores.values())
        assert log_z[b].item() == pytest.approx(expected_z, abs=1e-9)
        gold = tuple(tags[b, :n].tolist())
        assert nll[b].item() == pytest.approx(expected_z - scores[gold], abs=1e-9)
    torch.testing.assert_close(crf(emissions, tags, lens), nll)


@pytest.mark.parametrize(("k", "lengths"), [(3, [4, 1, 3, 2]), (4, [3, 3]), (5, [4, 2])])
def test_viterbi_matches_brute_force_and_numpy(k: int, lengths: list[int]) -> None:
    crf = make_crf(k, seed=10 + k)
    emissions, _ = padded_batch(k, lengths, seed=10 + k)
    lens = torch.tensor(lengths)
    paths = crf.viterbi(emissions, lens)
    decoded = decode_batch(emissions.numpy(), lens.numpy(), crf.to_transitions())
    log_z = crf.log_partition(emissions, lens)
    for b, n in enumerate(lengths):
        scores = brute_force(crf, emissions[b, :n])
        best = max(scores, key=scores.get)
        assert tuple(paths[b]) == best
        assert decoded[b].tag_ids.tolist() == list(best)
        assert decoded[b].log_z == pytest.approx(log_z[b].item(), abs=1e-9)


def test_marginals_match_brute_force() -> None:
    k, length = 3, 4
    crf = make_crf(k, seed=3)
    emissions, _ = padded_batch(k, [length], seed=3)
    (decoded,) = decode_batch(emissions.numpy(), np.array([length]), crf.to_transitions())
    scores = brute_force(crf, emissions[0])
    log_z = log_sum_exp(scores.values())
    expected = np.zeros((length, k))
    for seq, s in scores.items():
        expected[np.arange(length), list(seq)] += math.exp(s - log_z)
    np.testing.assert_allclose(decoded.marginals, expected, atol=1e-10)
    # marginals are also the gradient of log Z with respect to the emissions
    em = emissions.clone().requires_grad_(True)
    crf.log_partition(em, torch.tensor([length])).sum().backward()
    np.testing.assert_allclose(em.grad[0].numpy(), expected, atol=1e-10)


def test_numpy_decoding_equals_torch_on_a_larger_batch() -> None:
    k = 9
    crf = CRF.for_labels(
        ["O", "B-A", "I-A", "E-A", "S-A", "B-B", "I-B", "E-B", "S-B"], "bioes"
    ).double()
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_(std=2.0)
    lengths = [12, 1, 0, 7, 12, 3]
    emissions, _ = padded_batch(k, lengths, seed=99)
    lens = torch.tensor(lengths)
    torch_paths = crf.viterbi(emissions, lens)
    decoded = decode_batch(emissions.numpy(), lens.numpy(), crf.to_transitions())
    log_z = crf.log_partition(emissions, lens)
    for b in range(len(lengths)):
        assert decoded[b].tag_ids.tolist() == torch_paths[b]
        assert decoded[b].log_z == pytest.approx(log_z[b].item(), abs=1e-8)


def test_float32_emissions_and_parameters() -> None:
    crf = CRF(CRFConfig(num_tags=4))
    emissions = torch.randn(3, 5, 4)
    lens = torch.tensor([5, 2, 0])
    tags = torch.randint(0, 4, (3, 5))
    nll = crf.nll(emissions, tags, lens)
    assert nll.dtype == torch.float32 and torch.isfinite(nll).all()
    assert (nll[:2] > 0).all() and nll[2] == 0
    half = crf.nll(emissions.half(), tags, lens)
    torch.testing.assert_close(half, nll, atol=1e-2, rtol=1e-2)
    decoded = decode_batch(emissions.numpy(), lens.numpy(), crf.to_transitions())
    assert [d.tag_ids.tolist() for d in decoded] == crf.viterbi(emissions, lens)


def test_padding_invariance_and_gradients() -> None:
    k = 4
    crf = make_crf(k, seed=5)
    lengths = [5, 2, 3]
    emissions, tags = padded_batch(k, lengths, seed=5)
    emissions.requires_grad_(True)
    nll = crf.nll(emissions, tags, torch.tensor(lengths))
    for b, n in enumerate(lengths):
        alone = crf.nll(emissions[b : b + 1, :n], tags[b : b + 1, :n], torch.tensor([n]))
        assert alone.item() == pytest.approx(nll[b].item(), abs=1e-10)
    nll.sum().backward()
    for b, n in enumerate(lengths):
        assert (emissions.grad[b, n:] == 0).all()
        assert emissions.grad[b, :n].abs().sum() > 0
    assert all(torch.isfinite(p.grad).all() for p in crf.parameters())


def test_length_zero_and_one() -> None:
    k = 3
    crf = make_crf(k, seed=6)
    emissions = torch.randn(2, 1, k, dtype=torch.float64)
    lens = torch.tensor([0, 1])
    tags = torch.tensor([[0], [2]])
    nll = crf.nll(emissions, tags, lens)
    assert nll[0].item() == 0.0
    scores = crf.start + emissions[1, 0] + crf.end
    assert nll[1].item() == pytest.approx((scores.logsumexp(0) - scores[2]).item())
    assert crf.viterbi(emissions, lens) == [[], [int(scores.argmax())]]
    empty = torch.zeros(2, 0, k, dtype=torch.float64)
    zero = torch.tensor([0, 0])
    assert crf.nll(empty, torch.zeros(2, 0, dtype=torch.long), zero).tolist() == [0.0, 0.0]
    assert crf.log_partition(empty, zero).tolist() == [0.0, 0.0]
    assert crf.viterbi(empty, zero) == [[], []]


def test_constraints_apply_in_training_and_decoding() -> None:
    crf = CRF.for_labels(IOB2, "iob2").double()
    allowed, allowed_start, _ = constraint_mask(IOB2, "iob2")
    assert torch.equal(crf.allowed, torch.from_numpy(allowed))
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_()
    length = 3
    emissions = torch.randn(1, length, len(IOB2), dtype=torch.float64, requires_grad=True)
    scores = brute_force(crf, emissions[0].detach())
    valid = {s: v for s, v in scores.items() if is_valid_sequence(s, IOB2, "iob2")}
    log_z = crf.log_partition(emissions, torch.tensor([length]))
    # invalid sequences carry (practically) no mass: Z sums over valid sequences only
    assert log_z.item() == pytest.approx(log_sum_exp(valid.values()), abs=1e-9)
    gold = torch.tensor([[1, 2, 0]])  # B-LOC I-LOC O
    crf.nll(emissions, gold, torch.tensor([length])).sum().backward()
    assert (crf.transitions.grad[~crf.allowed] == 0).all()
    assert (crf.start.grad[~crf.allowed_start] == 0).all()
    trans = crf.to_transitions()
    assert (trans.transitions[~allowed] == DISALLOWED).all()
    assert (trans.start[~allowed_start] == DISALLOWED).all()
    # to_transitions equals constraining the raw parameters in NumPy
    raw = CRF(CRFConfig(len(IOB2))).double()
    raw.load_state_dict({**crf.state_dict(), "allowed": torch.ones(5, 5, dtype=torch.bool)})
    np.testing.assert_array_equal(
        constrain(raw.to_transitions(), IOB2, "iob2").transitions, trans.transitions
    )


def test_constraints_travel_in_the_state_dict() -> None:
    crf = CRF.for_labels(BIOES, "bioes")
    fresh = CRF(CRFConfig(num_tags=len(BIOES)))
    assert fresh.allowed.all()
    fresh.load_state_dict(crf.state_dict())
    for name in ("allowed", "allowed_start", "allowed_end"):
        assert torch.equal(getattr(fresh, name), getattr(crf, name))
    assert "constrained=True" in repr(fresh)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="num_tags"):
        CRF(CRFConfig(num_tags=0))
    with pytest.raises(ValueError, match="allowed"):
        CRF(CRFConfig(num_tags=2), allowed=torch.ones(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="allowed_start"):
        CRF(CRFConfig(num_tags=2), allowed_start=torch.ones(2))
    crf = CRF(CRFConfig(num_tags=2))
    with pytest.raises(ValueError, match="emissions"):
        crf.log_partition(torch.zeros(2, 2), torch.tensor([1, 1]))
    with pytest.raises(ValueError, match="lengths"):
        crf.log_partition(torch.zeros(2, 2, 2), torch.tensor([1]))
    with pytest.raises(ValueError, match="tags"):
        crf.nll(torch.zeros(2, 2, 2), torch.zeros(2, 3, dtype=torch.long), torch.tensor([1, 1]))


@st.composite
def crf_problem(draw):
    scheme = draw(st.sampled_from(["iob2", "bioes"]))
    labels = IOB2 if scheme == "iob2" else BIOES
    k = len(labels)
    b, t = draw(st.integers(1, 3)), draw(st.integers(0, 6))
    floats = st.floats(-10, 10, allow_nan=False, width=32)
    emissions = draw(hnp.arrays(np.float32, (b, t, k), elements=floats))
    params = [draw(hnp.arrays(np.float32, s, elements=floats)) for s in [(k, k), (k,), (k,)]]
    lengths = draw(st.lists(st.integers(0, t), min_size=b, max_size=b))
    return scheme, labels, emissions, params, lengths


@settings(max_examples=100, deadline=None)
@given(crf_problem())
def test_constrained_torch_viterbi_is_valid_and_equals_numpy(problem) -> None:
    scheme, labels, emissions, params, lengths = problem
    crf = CRF.for_labels(labels, scheme)
    with torch.no_grad():
        for p, value in zip(crf.parameters(), params, strict=True):
            p.copy_(torch.from_numpy(value))
    em, lens = torch.from_numpy(emissions), torch.tensor(lengths)
    paths = crf.viterbi(em, lens)
    decoded = decode_batch(emissions, np.array(lengths), crf.to_transitions())
    for path, d, n in zip(paths, decoded, lengths, strict=True):
        assert len(path) == n
        assert is_valid_sequence(path, labels, scheme), [labels[i] for i in path]
        assert d.tag_ids.tolist() == path or math.isclose(  # ties: same score
            d.span_log_prob(0, n, path), d.span_log_prob(0, n), abs_tol=1e-4
        )
