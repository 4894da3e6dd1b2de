"""Linear-chain CRF decoding in NumPy: constraints, Viterbi, marginals and span scores.

This module is shared by every backend (torch and ONNX Runtime): the network only computes
emissions, and everything after that runs here, so the two backends cannot disagree in decoding.
It imports NumPy and the standard library only (never torch).

The model (Lafferty et al., 2001; Lample et al., 2016) scores a tag sequence ``y`` of length ``L``
for a sentence ``x`` as::

    score(x, y) = start[y_0] + sum_t emit_t(y_t) + sum_{t>=1} trans[y_{t-1}, y_t] + end[y_{L-1}]
    P(y | x)    = exp(score(x, y) - log Z(x)),   log Z = logsumexp over all K**L sequences

Shapes: emissions ``(B, T, K)`` (padded), ``lengths (B,)``, ``transitions (K, K)`` with
``transitions[i, j]`` the score of tag ``i`` followed by tag ``j``, ``start (K,)``, ``end (K,)``.
Everything is computed in log space (float64) with a max-shifted logsumexp, so large emissions
stay finite. Padded steps (``t >= lengths[b]``) never influence the result.

Forward/backward quantities, for one sentence of length ``L``::

    log alpha_0(j) = start[j] + emit_0(j)
    log alpha_t(j) = emit_t(j) + logsumexp_i(log alpha_{t-1}(i) + trans[i, j])
    log beta_{L-1}(i) = end[i]
    log beta_t(i)  = logsumexp_j(trans[i, j] + emit_{t+1}(j) + log beta_{t+1}(j))
    log Z          = logsumexp_j(log alpha_{L-1}(j) + end[j])
    P(y_t = k | x) = exp(log alpha_t(k) + log beta_t(k) - log Z)          (the marginals)

**Span score.** The score of a span covering tokens ``s .. e-1`` with tags ``y_s .. y_{e-1}``
(for an entity: its ``B-X I-X ...`` tags) is the exact CRF probability that those tokens carry
exactly those tags, whatever the rest of the sentence carries::

    P(y_s..y_{e-1} | x) = exp( log alpha_s(y_s)
                               + sum_{t=s+1}^{e-1} [trans(y_{t-1}, y_t) + emit_t(y_t)]
                               + log beta_{e-1}(y_{e-1}) - log Z )

For a one-token span it is the token's marginal; it is never larger than the smallest marginal of
its tokens. A span's tags do not pin the neighbouring tokens, so for IOB2 the probability that the
*entity* ends at ``e`` also needs ``y_e`` not to be ``I-X``; we score the tag subsequence only,
which is what the predictor reports.

**Constraints.** :func:`constraint_mask` gives the allowed transitions of a tag scheme and
:func:`constrain` sets the disallowed scores to ``-1e4`` (finite, so sums and differences never
produce ``nan``). With emissions and transitions far below ``1e4`` in magnitude, no decoded path
and no marginal uses a disallowed transition (``exp(-1e4) == 0`` in float64).

**Softmax head.** A per-token softmax classifier decodes with the same functions: pass
``log_softmax(logits)`` as emissions and :meth:`Transitions.zeros` (optionally constrained). With
zero transitions ``log Z == 0``, the marginals are the softmax probabilities and Viterbi is the
per-token argmax; with constraints, Viterbi is the best *valid* sequence under the token
probabilities and the marginals are renormalised over valid sequences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np

from ner.data.schemes import parse_tag

Scheme = Literal["iob1", "iob2", "bioes", "binary"]

DISALLOWED = -1e4
"""Score given to a disallowed transition by :func:`constrain` (finite on purpose)."""

__all__ = [
    "DISALLOWED",
    "Decoded",
    "DecodedBatch",
    "Packing",
    "Transitions",
    "constrain",
    "constraint_mask",
    "decode_batch",
    "decode_flat",
    "forward_backward",
    "is_valid_sequence",
    "log_softmax",
    "logsumexp",
    "span_score",
    "viterbi",
    "viterbi_flat",
]


@dataclass(frozen=True, eq=False)
class Transitions:
    """CRF transition scores (log space).

    Attributes:
        transitions: ``(K, K)``, ``transitions[i, j]`` is the score of tag ``i`` followed by ``j``.
        start: ``(K,)``, score of starting a sentence with each tag.
        end: ``(K,)``, score of ending a sentence with each tag.
    """

    transitions: np.ndarray
    start: np.ndarray
    end: np.ndarray

    def __post_init__(self) -> None:
        trans = np.asarray(self.transitions, dtype=np.float64)
        start = np.asarray(self.start, dtype=np.float64)
        end = np.asarray(self.end, dtype=np.float64)
        k = start.shape[0] if start.ndim == 1 else -1
        if trans.shape != (k, k) or start.shape != (k,) or end.shape != (k,):
            raise ValueError(
                "Transitions need transitions (K, K), start (K,) and end (K,); got "
                f"{trans.shape}, {start.shape}, {end.shape}"
            )
        if not (np.isfinite(trans).all() and np.isfinite(start).all() and np.isfinite(end).all()):
            raise ValueError("Transitions must be finite (use DISALLOWED = -1e4, not -inf)")
        for name, value in (("transitions", trans), ("start", start), ("end", end)):
            value.setflags(write=False)
            object.__setattr__(self, name, value)

    @property
    def num_tags(self) -> int:
        """The number of tags ``K``."""
        return int(self.start.shape[0])

    @classmethod
    def zeros(cls, num_tags: int) -> Transitions:
        """All-zero transitions: the softmax head (independent tokens)."""
        return cls(np.zeros((num_tags, num_tags)), np.zeros(num_tags), np.zeros(num_tags))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready lists (float64 round-trips exactly through JSON)."""
        return {
            "transitions": self.transitions.tolist(),
            "start": self.start.tolist(),
            "end": self.end.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Transitions:
        """Inverse of :meth:`to_dict`; raises ``ValueError`` on missing keys or bad shapes."""
        try:
            return cls(data["transitions"], data["start"], data["end"])
        except (KeyError, TypeError) as e:
            raise ValueError(f"bad transitions data: {e!r}") from e


# --------------------------------------------------------------------------------------------
# Constraints


def constraint_mask(
    labels: Sequence[str], scheme: Scheme
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Allowed transitions of a tag scheme.

    Args:
        labels: the ``K`` tag names, in tag-id order (e.g. ``["O", "B-PER", "I-PER"]``).
        scheme: ``"iob2"``: ``I-X`` only after ``B-X`` or ``I-X`` (never first). ``"bioes"``:
            ``B-X -> I-X|E-X``, ``I-X -> I-X|E-X``, ``E-X|S-X|O -> O|B-*|S-*``, start only with
            ``O|B-*|S-*``, end only with ``O|E-*|S-*``. ``"iob1"`` and ``"binary"``: all allowed.

    Returns:
        ``(allowed (K, K), allowed_start (K,), allowed_end (K,))`` boolean arrays.
    """
    k = len(labels)
    allowed = np.ones((k, k), dtype=bool)
    allowed_start = np.ones(k, dtype=bool)
    allowed_end = np.ones(k, dtype=bool)
    if scheme in ("iob1", "binary"):
        return allowed, allowed_start, allowed_end
    if scheme not in ("iob2", "bioes"):
        raise ValueError(f"unknown tag scheme {scheme!r}: expected iob1, iob2, bioes or binary")
    try:
        parsed = [parse_tag(tag) for tag in labels]
    except ValueError as e:
        raise ValueError(f"cannot parse tag: {e}") from None
    valid_prefixes = {"O", "B", "I"} if scheme == "iob2" else {"O", "B", "I", "E", "S"}
    for tag, (prefix, _) in zip(labels, parsed, strict=True):
        if prefix not in valid_prefixes:
            raise ValueError(f"tag {tag!r} is not a {scheme} tag")
    for j, (pj, tj) in enumerate(parsed):
        if scheme == "iob2":
            allowed_start[j] = pj != "I"
        else:
            allowed_start[j] = pj in ("O", "B", "S")
            allowed_end[j] = pj in ("O", "E", "S")
        for i, (pi, ti) in enumerate(parsed):
            inside = pi in ("B", "I") and ti == tj  # the previous tag opened an X entity
            if scheme == "iob2":
                allowed[i, j] = pj != "I" or inside
            elif pi in ("B", "I"):
                allowed[i, j] = pj in ("I", "E") and inside
            else:
                allowed[i, j] = pj in ("O", "B", "S")
    return allowed, allowed_start, allowed_end


def constrain(trans: Transitions, labels: Sequence[str], scheme: Scheme) -> Transitions:
    """Copy of ``trans`` with the transitions disallowed by ``scheme`` set to ``DISALLOWED``."""
    allowed, allowed_start, allowed_end = constraint_mask(labels, scheme)
    if allowed_start.shape[0] != trans.num_tags:
        raise ValueError(f"{len(labels)} labels for {trans.num_tags} tags")
    return Transitions(
        np.where(allowed, trans.transitions, DISALLOWED),
        np.where(allowed_start, trans.start, DISALLOWED),
        np.where(allowed_end, trans.end, DISALLOWED),
    )


def is_valid_sequence(tag_ids: Sequence[int], labels: Sequence[str], scheme: Scheme) -> bool:
    """Whether a tag-id sequence obeys :func:`constraint_mask` (an empty sequence is valid)."""
    ids = np.asarray(tag_ids, dtype=np.int64)
    if ids.size == 0:
        return True
    allowed, allowed_start, allowed_end = constraint_mask(labels, scheme)
    return bool(allowed_start[ids[0]] and allowed_end[ids[-1]] and allowed[ids[:-1], ids[1:]].all())


# --------------------------------------------------------------------------------------------
# Numerics


def logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    """Stable ``log(sum(exp(x), axis))`` (max-shifted; ``x`` must be finite)."""
    m = np.max(x, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return np.squeeze(out, axis=axis)


def log_softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Stable log-softmax: emissions for the softmax head."""
    x = np.asarray(logits, dtype=np.float64)
    return x - np.expand_dims(logsumexp(x, axis=axis), axis)


def _check(
    emissions: np.ndarray, lengths: np.ndarray, trans: Transitions
) -> tuple[np.ndarray, np.ndarray]:
    """Validate shapes; return float64 emissions ``(B, T, K)`` and int64 lengths ``(B,)``."""
    em = np.asarray(emissions, dtype=np.float64)
    lens = np.asarray(lengths)
    if em.ndim != 3:
        raise ValueError(f"emissions must be (B, T, K), got shape {em.shape}")
    b, t, k = em.shape
    if k != trans.num_tags:
        raise ValueError(f"emissions have {k} tags, transitions {trans.num_tags}")
    lens = _check_lengths(lens, b)
    if lens.size and lens.max() > t:
        raise ValueError(f"lengths must lie in [0, {t}], got {lens.tolist()}")
    return em, lens


def _check_lengths(lens: np.ndarray, b: int) -> np.ndarray:
    if lens.shape != (b,) or (lens.size and not np.issubdtype(lens.dtype, np.integer)):
        raise ValueError(f"lengths must be integers of shape ({b},), got {lens.dtype} {lens.shape}")
    lens = lens.astype(np.int64)
    if lens.size and lens.min() < 0:
        raise ValueError(f"lengths must not be negative, got {lens.tolist()}")
    return lens


def _check_flat(
    emissions: np.ndarray, lengths: np.ndarray, trans: Transitions
) -> tuple[np.ndarray, np.ndarray]:
    """Validate ragged input; return float64 emissions ``(N, K)`` and int64 lengths ``(B,)``."""
    em = np.asarray(emissions, dtype=np.float64)
    if em.ndim != 2:
        raise ValueError(f"emissions must be (N, K) sentences end to end, got shape {em.shape}")
    if em.shape[1] != trans.num_tags:
        raise ValueError(f"emissions have {em.shape[1]} tags, transitions {trans.num_tags}")
    lens = np.asarray(lengths)
    lens = _check_lengths(lens, lens.shape[0] if lens.ndim == 1 else -1)
    if int(lens.sum()) != em.shape[0]:
        raise ValueError(f"lengths add up to {int(lens.sum())}, emissions have {em.shape[0]} rows")
    return em, lens


def _unpad(em: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Padded ``(B, T, K)`` -> the sentences end to end ``(N, K)``."""
    return em[np.arange(em.shape[1]) < lens[:, None]]


@dataclass(frozen=True, eq=False)
class Packing:
    """Sentences laid out time-major, longest first (as torch's ``PackedSequence``).

    Sentence ``order[r]`` has rank ``r``. The sentences still running at step ``t`` are ranks
    ``0 .. batch_sizes[t] - 1``, and their rows are ``offsets[t] .. offsets[t] + batch_sizes[t] -
    1`` of a packed ``(N, K)`` array, so each step of a recursion is one slice of the whole batch:
    no padding, no masks, and finished sentences drop out of the arithmetic.

    Attributes:
        lengths: ``(B,)`` sentence lengths, in input order.
        order: ``(B,)`` input index of each rank (stable: equal lengths keep input order).
        batch_sizes: ``(T,)`` sentences running at each step (``T`` = the longest length).
        offsets: ``(T + 1,)`` first packed row of each step.
        rows: ``(N,)`` packed row of each token, tokens in input order (sentences end to end).
    """

    lengths: np.ndarray
    order: np.ndarray
    batch_sizes: np.ndarray
    offsets: np.ndarray
    rows: np.ndarray

    @classmethod
    def of(cls, lengths: np.ndarray) -> Packing:
        """The layout of sentences of ``lengths (B,)`` (0 allowed)."""
        lens = np.asarray(lengths, dtype=np.int64)
        order = np.argsort(-lens, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        t = int(lens.max(initial=0))
        # batch_sizes[t] = number of sentences longer than t
        batch_sizes = np.cumsum(np.bincount(lens, minlength=t + 1)[::-1])[::-1][1:]
        offsets = np.zeros(t + 1, dtype=np.int64)
        np.cumsum(batch_sizes, out=offsets[1:])
        sentence = np.repeat(np.arange(len(lens)), lens)  # (N,) sentence of each token
        step = np.arange(len(sentence)) - np.repeat(np.cumsum(lens) - lens, lens)
        rows = offsets[step] + rank[sentence]
        return cls(lens, order, batch_sizes, offsets, rows)

    @property
    def steps(self) -> range:
        return range(len(self.batch_sizes))

    def span(self, t: int) -> tuple[int, int, int]:
        """(first row, end row, number of sentences) of step ``t``."""
        lo, n = int(self.offsets[t]), int(self.batch_sizes[t])
        return lo, lo + n, n

    def pack(self, flat: np.ndarray) -> np.ndarray:
        """Rows in input order -> packed order."""
        out = np.empty_like(flat)
        out[self.rows] = flat
        return out

    def unpack(self, packed: np.ndarray) -> np.ndarray:
        """Packed rows -> input order (sentences end to end)."""
        return packed[self.rows]


def _exp_scaled(em: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row max ``m (N,)`` and ``exp(em - m) (N, K)``, so that no exp overflows."""
    m = em.max(axis=1) if em.shape[0] else np.zeros(0)
    return m, np.exp(em - m[:, None])


def _log_of(scaled: np.ndarray, log_scale: np.ndarray) -> np.ndarray:
    """log of a row-normalised vector times its scale; tiny floor keeps impossible tags finite."""
    return np.log(np.maximum(scaled, 1e-300)) + log_scale[..., None]


def _viterbi_packed(em: np.ndarray, p: Packing, trans: Transitions) -> np.ndarray:
    """Packed emissions ``(N, K)`` -> packed Viterbi tag ids ``(N,)``.

    The forward pass keeps only the best scores ``delta_t (K, n)``, tags first so that the
    maximum over the previous tag is an elementwise maximum of contiguous rows; the backtrack
    then recovers the argmax on the chosen path only, from the stored ``delta_{t-1}``: ``(n, K)``
    work per step instead of back-pointers for every tag, ``(n, K, K)``. The sums are the same
    floats as a back-pointer table's and the first maximum wins ties, so the path is the same.
    """
    b, k = len(p.lengths), trans.num_tags
    tags = np.zeros(em.shape[0], dtype=np.int64)
    if not p.steps:
        return tags
    em_t = np.ascontiguousarray(em.T)  # (K, N)
    delta = np.empty_like(em)  # (N, K) best score of a path ending in each tag
    into = trans.transitions[:, :, None]  # (K_prev, K, 1)
    lo, hi, n = p.span(0)
    delta[lo:hi] = trans.start + em[lo:hi]
    last = np.zeros((k, b))  # (K, B) by rank: the scores at each sentence's last step
    last[:, :n] = delta[lo:hi].T
    for t in p.steps[1:]:
        lo, hi, n = p.span(t)
        # (K_prev, 1, n) + (K_prev, K, 1) -> max over K_prev -> (K, n)
        best = (last[:, None, :n] + into).max(axis=0) + em_t[:, lo:hi]
        delta[lo:hi] = best.T
        last[:, :n] = best
    tag = (last + trans.end[:, None]).argmax(axis=0)  # (B,) last tag of each sentence
    into_t = np.ascontiguousarray(trans.transitions.T)  # (K, K_prev)
    for t in reversed(p.steps):
        lo, hi, n = p.span(t)
        tags[lo:hi] = tag[:n]
        if t:  # the previous tag that gave each sentence its best score in its tag at t
            before = int(p.offsets[t - 1])
            cand = delta[before : before + n] + into_t[tag[:n]]  # (n, K_prev)
            tag[:n] = cand.argmax(axis=1)
    return tags


@dataclass(frozen=True, eq=False)
class _LogScores:
    """Packed log alpha or log beta ``(N, K)``, kept as computed: ``log(hat) + scale`` (scaled
    space) or ``hat`` itself (``scale`` None, log space), so that callers who need a few entries
    (the decoded tags') take logs of those only."""

    hat: np.ndarray
    scale: np.ndarray | None

    def full(self) -> np.ndarray:
        return self.hat if self.scale is None else _log_of(self.hat, self.scale)

    def at(self, rows: np.ndarray, tags: np.ndarray) -> np.ndarray:
        """``full()[rows, tags]`` (the same floats), computed for those entries only."""
        picked = self.hat[rows, tags]
        return (
            picked if self.scale is None else np.log(np.maximum(picked, 1e-300)) + self.scale[rows]
        )


def _forward_packed(
    em: np.ndarray, p: Packing, trans: Transitions, exp_em: tuple[np.ndarray, np.ndarray] | None
) -> tuple[_LogScores, np.ndarray]:
    """Packed log alpha and log Z ``(B,)`` by rank (0 for an empty sentence).

    ``exp_em`` (:func:`_exp_scaled` of ``em``) given: in scaled probability space (Rabiner 1989),
    each step one ``(n, K) x (K, K)`` matrix product and a normalisation whose log is carried
    separately: the same quantity as the log-space recursion (``exp_em`` None), an order of
    magnitude faster than logsumexp over ``(n, K, K)``.
    """
    b, k = len(p.lengths), trans.num_tags
    scaled = exp_em is not None
    hats, scales = np.empty((em.shape[0], k)), np.empty(em.shape[0])
    hat, log_scale = np.full((b, k), 1.0 / k), np.zeros(b)  # by rank (log space: hat = alpha)
    if p.steps:
        if exp_em is not None:
            m, e = exp_em
            exp_trans = np.exp(trans.transitions)  # (K, K); disallowed (-1e4) -> 0
        lo, hi, n = p.span(0)
        a0 = trans.start + em[lo:hi]  # (n, K)
        if scaled:
            c0 = a0.max(axis=1)
            h = np.exp(a0 - c0[:, None])
            s = h.sum(axis=1)
            hat[:n], log_scale[:n] = h / s[:, None], c0 + np.log(s)
        else:
            hat[:n] = a0
        hats[lo:hi], scales[lo:hi] = hat[:n], log_scale[:n]
        for t in p.steps[1:]:
            lo, hi, n = p.span(t)
            if scaled:
                v = (hat[:n] @ exp_trans) * e[lo:hi]  # (n, K)
                s = v.sum(axis=1)
                safe = np.where(s > 0, s, 1.0)
                hat[:n] = v / safe[:, None]
                log_scale[:n] = log_scale[:n] + m[lo:hi] + np.log(safe)
            else:  # (n, K_prev, 1) + (K_prev, K) -> logsumexp over K_prev -> (n, K)
                hat[:n] = logsumexp(hat[:n, :, None] + trans.transitions, axis=1) + em[lo:hi]
            hats[lo:hi], scales[lo:hi] = hat[:n], log_scale[:n]
    last = _log_of(hat, log_scale) if scaled else hat
    ranked = p.lengths[p.order]
    log_z = np.where(ranked > 0, logsumexp(last + trans.end, axis=1), 0.0) if b else np.zeros(0)
    return _LogScores(hats, scales if scaled else None), log_z


def _backward_packed(
    em: np.ndarray, p: Packing, trans: Transitions, exp_em: tuple[np.ndarray, np.ndarray] | None
) -> _LogScores:
    """Packed log beta (scaled or in log space, like :func:`_forward_packed`)."""
    b, k = len(p.lengths), trans.num_tags
    scaled = exp_em is not None
    hats, scales = np.empty((em.shape[0], k)), np.zeros(em.shape[0])
    if not p.steps:
        return _LogScores(hats, None)
    if exp_em is not None:
        m, e = exp_em
        exp_trans_t = np.exp(trans.transitions).T  # (K_next, K)
        c_end = trans.end.max()
        end_hat = np.exp(trans.end - c_end)
        end_hat = end_hat / end_hat.sum()
        end_scale = c_end + np.log(np.exp(trans.end - c_end).sum())
    hat, log_scale = np.zeros((b, k)), np.zeros(b)
    n_next = 0
    for t in reversed(p.steps):
        lo, hi, n = p.span(t)
        if n_next:  # sentences running at t + 1: recur from their step t + 1
            nxt = slice(hi, hi + n_next)
            if scaled:
                v = (e[nxt] * hat[:n_next]) @ exp_trans_t  # (n_next, K)
                s = v.sum(axis=1)
                safe = np.where(s > 0, s, 1.0)
                hat[:n_next] = v / safe[:, None]
                log_scale[:n_next] = log_scale[:n_next] + m[nxt] + np.log(safe)
            else:  # (K, K) + (n_next, 1, K_next) -> logsumexp over K_next -> (n_next, K)
                inner = em[nxt] + hat[:n_next]
                hat[:n_next] = logsumexp(trans.transitions + inner[:, None, :], axis=2)
        if scaled:  # sentences whose last token is at t
            hat[n_next:n], log_scale[n_next:n] = end_hat, end_scale
        else:
            hat[n_next:n] = trans.end
        hats[lo:hi], scales[lo:hi] = hat[:n], log_scale[:n]
        n_next = n
    return _LogScores(hats, scales if scaled else None)


# Scaled probability space is exact up to float64 rounding while the scores stay within a few
# hundred nats of each other; beyond that (adversarial scores), use the log-space recursion.
_SCALED_RANGE = 200.0


def _scaled_ok(em: np.ndarray, trans: Transitions) -> bool:
    spreads = []
    for scores in (trans.transitions, trans.start, trans.end):
        allowed = scores[scores > DISALLOWED / 2]
        spreads.append(float(np.ptp(allowed)) if allowed.size else 0.0)
    if em.size and float(em.max() - em.min()) >= _SCALED_RANGE:  # else no row's spread can be
        spreads.append(float(np.ptp(em, axis=-1).max()))  # (per row: a slow reduction)
    return max(spreads) < _SCALED_RANGE


# --------------------------------------------------------------------------------------------
# Public decoding API


def _split(x: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
    """Rows of sentences end to end -> one view per sentence."""
    if not len(lengths):
        return []
    return np.split(x, np.cumsum(lengths)[:-1])


def viterbi_flat(emissions: np.ndarray, lengths: np.ndarray, trans: Transitions) -> np.ndarray:
    """Best tag sequence of every sentence, for sentences laid end to end.

    Args:
        emissions: ``(N, K)`` scores, the sentences' rows one after the other (no padding).
        lengths: ``(B,)`` sentence lengths, adding up to ``N``; 0 is allowed.
        trans: transition scores (constrained or not).

    Returns:
        ``(N,)`` int64 tag ids, in the rows' order. One loop over time serves the whole batch.
    """
    em, lens = _check_flat(emissions, lengths, trans)
    p = Packing.of(lens)
    return p.unpack(_viterbi_packed(p.pack(em), p, trans))


def viterbi(emissions: np.ndarray, lengths: np.ndarray, trans: Transitions) -> list[np.ndarray]:
    """Best tag sequence per sentence.

    Args:
        emissions: ``(B, T, K)`` scores (padded).
        lengths: ``(B,)`` true lengths, ``0 <= lengths <= T``.
        trans: transition scores (constrained or not).

    Returns:
        ``B`` int64 arrays of shape ``(lengths[b],)``.
    """
    em, lens = _check(emissions, lengths, trans)
    return _split(viterbi_flat(_unpad(em, lens), lens, trans), lens)


def forward_backward(
    emissions: np.ndarray, lengths: np.ndarray, trans: Transitions
) -> list[np.ndarray]:
    """Per-token marginals ``P(y_t = k | x)``.

    Args:
        emissions: ``(B, T, K)`` scores (padded).
        lengths: ``(B,)`` true lengths.
        trans: transition scores.

    Returns:
        ``B`` float64 arrays of shape ``(lengths[b], K)``; each row sums to 1.
    """
    em, lens = _check(emissions, lengths, trans)
    return _split(decode_flat(_unpad(em, lens), lens, trans).marginals(), lens)


@dataclass(frozen=True, eq=False)
class Decoded:
    """Decoding of one sentence of length ``L``.

    Attributes:
        tag_ids: ``(L,)`` Viterbi tag ids.
        marginals: ``(L, K)`` ``P(y_t = k | x)``.
        log_z: the log partition function.
        emissions: ``(L, K)`` the sentence's emissions (float64).
        log_alpha: ``(L, K)`` forward scores.
        log_beta: ``(L, K)`` backward scores.
        trans: the transitions used.
    """

    tag_ids: np.ndarray
    marginals: np.ndarray
    log_z: float
    emissions: np.ndarray
    log_alpha: np.ndarray
    log_beta: np.ndarray
    trans: Transitions

    def __len__(self) -> int:
        return int(self.tag_ids.shape[0])

    @property
    def tag_scores(self) -> np.ndarray:
        """``(L,)`` marginal probability of each decoded tag: the per-token confidence."""
        return self.marginals[np.arange(len(self)), self.tag_ids]

    def span_log_prob(self, start: int, end: int, tags: Sequence[int] | None = None) -> float:
        """log ``P(y_start..y_{end-1} = tags | x)``; ``tags`` defaults to the decoded tags."""
        if not 0 <= start < end <= len(self):
            raise ValueError(f"span [{start}, {end}) out of range for length {len(self)}")
        ids = self.tag_ids[start:end] if tags is None else np.asarray(tags, dtype=np.int64)
        if ids.shape != (end - start,):
            raise ValueError(f"{ids.shape[0]} tags for a span of {end - start} tokens")
        if ids.min() < 0 or ids.max() >= self.trans.num_tags:
            raise ValueError(f"tag ids must lie in [0, {self.trans.num_tags}), got {ids.tolist()}")
        steps = np.arange(start + 1, end)
        inner = (
            self.trans.transitions[ids[:-1], ids[1:]].sum() + self.emissions[steps, ids[1:]].sum()
        )
        return float(
            self.log_alpha[start, ids[0]] + inner + self.log_beta[end - 1, ids[-1]] - self.log_z
        )

    def span_score(self, start: int, end: int, tags: Sequence[int] | None = None) -> float:
        """``P(y_start..y_{end-1} = tags | x)`` in ``[0, 1]`` (see the module docstring)."""
        return float(min(1.0, np.exp(self.span_log_prob(start, end, tags))))

    def sequence_score(self) -> float:
        """Probability of the whole decoded sequence (1.0 for an empty sentence)."""
        return self.span_score(0, len(self)) if len(self) else 1.0


@dataclass(frozen=True, eq=False)
class DecodedBatch:
    """Decoding of ``B`` sentences laid end to end, ``N`` tokens in all (see :func:`decode_flat`).

    Attributes:
        tag_ids: ``(N,)`` Viterbi tag ids.
        log_z: ``(B,)`` log partition function of each sentence (0 when empty).
        emissions: ``(N, K)`` the emissions (float64).
        lengths: ``(B,)`` sentence lengths.
        trans: the transitions used.
        packing: the time-major layout the recursions ran in.
    """

    tag_ids: np.ndarray
    log_z: np.ndarray
    emissions: np.ndarray
    lengths: np.ndarray
    trans: Transitions
    packing: Packing
    alpha: _LogScores = field(repr=False)
    beta: _LogScores = field(repr=False)

    @cached_property
    def log_alpha(self) -> np.ndarray:
        """``(N, K)`` forward scores."""
        return self.packing.unpack(self.alpha.full())

    @cached_property
    def log_beta(self) -> np.ndarray:
        """``(N, K)`` backward scores."""
        return self.packing.unpack(self.beta.full())

    def _token_log_z(self) -> np.ndarray:
        """``(N,)`` log Z of each token's sentence."""
        return np.repeat(self.log_z, self.lengths)

    def marginals(self) -> np.ndarray:
        """``(N, K)`` ``P(y_t = k | x)``."""
        log_p = self.log_alpha + self.log_beta - self._token_log_z()[:, None]
        return np.minimum(np.exp(log_p), 1.0)

    def tag_scores(self) -> np.ndarray:
        """``(N,)`` marginal probability of each decoded tag (without the other tags' marginals)."""
        rows, ids = self.packing.rows, self.tag_ids
        log_p = self.alpha.at(rows, ids) + self.beta.at(rows, ids) - self._token_log_z()
        return np.minimum(np.exp(log_p), 1.0)

    def span_log_probs(self, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """``(S,)`` log ``P(y_s..y_{e-1} | x)`` of the decoded tags over tokens ``[s, e)``.

        ``starts`` and ``ends`` index the rows (end exclusive); each span lies in one sentence.
        The same sums as :meth:`Decoded.span_log_prob`, for all spans at once.
        """
        s, e = np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64)
        ids, em = self.tag_ids, self.emissions
        sentence = np.searchsorted(np.cumsum(self.lengths), s, side="right")
        # step[t] = trans(y_{t-1}, y_t) + emit_t(y_t); a span sums it over s+1 .. e-1
        step = np.zeros(len(ids))
        if len(ids) > 1:
            step[1:] = (
                self.trans.transitions[ids[:-1], ids[1:]] + em[np.arange(1, len(ids)), ids[1:]]
            )
        inner = np.zeros(len(s))
        counts = e - s - 1
        multi = counts > 0
        if multi.any():
            c = counts[multi]
            first = np.cumsum(c) - c
            rows = np.repeat(s[multi] + 1 - first, c) + np.arange(int(c.sum()))
            inner[multi] = np.add.reduceat(step[rows], first)
        at = self.packing.rows
        return (
            self.alpha.at(at[s], ids[s])
            + inner
            + self.beta.at(at[e - 1], ids[e - 1])
            - self.log_z[sentence]
        )

    def span_scores(self, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """``(S,)`` ``P(y_s..y_{e-1} | x)`` in ``[0, 1]`` (see :meth:`span_log_probs`)."""
        return np.minimum(np.exp(self.span_log_probs(starts, ends)), 1.0)

    def sentences(self) -> list[Decoded]:
        """One :class:`Decoded` per sentence (views of this batch's arrays)."""
        lens = self.lengths
        parts = zip(
            _split(self.tag_ids, lens),
            _split(self.marginals(), lens),
            self.log_z.tolist(),
            _split(self.emissions, lens),
            _split(self.log_alpha, lens),
            _split(self.log_beta, lens),
            strict=True,
        )
        return [Decoded(ids, m, z, em, a, b, self.trans) for ids, m, z, em, a, b in parts]


def decode_flat(emissions: np.ndarray, lengths: np.ndarray, trans: Transitions) -> DecodedBatch:
    """Viterbi, forward-backward and span-scoring state for sentences laid end to end.

    Args:
        emissions: ``(N, K)`` scores, the sentences' rows one after the other (no padding).
        lengths: ``(B,)`` sentence lengths, adding up to ``N``; 0 is allowed.
        trans: transition scores (usually :func:`constrain`-ed).

    Returns:
        A :class:`DecodedBatch`. Each recursion is one loop over time for the whole batch
        (:class:`Packing`).
    """
    em, lens = _check_flat(emissions, lengths, trans)
    p = Packing.of(lens)
    packed = p.pack(em)
    exp_em = _exp_scaled(packed) if _scaled_ok(em, trans) else None
    alpha, log_z = _forward_packed(packed, p, trans, exp_em)
    by_input = np.empty_like(log_z)
    by_input[p.order] = log_z
    return DecodedBatch(
        tag_ids=p.unpack(_viterbi_packed(packed, p, trans)),
        log_z=by_input,
        emissions=em,
        lengths=lens,
        trans=trans,
        packing=p,
        alpha=alpha,
        beta=_backward_packed(packed, p, trans, exp_em),
    )


def decode_batch(emissions: np.ndarray, lengths: np.ndarray, trans: Transitions) -> list[Decoded]:
    """Viterbi, marginals and span-scoring state for a padded batch.

    Args:
        emissions: ``(B, T, K)`` scores (for the softmax head: log-softmax, with zero transitions).
        lengths: ``(B,)`` true lengths; ``0`` gives empty arrays.
        trans: transition scores (usually :func:`constrain`-ed).

    Returns:
        ``B`` :class:`Decoded`, one per sentence, unpadded.
    """
    em, lens = _check(emissions, lengths, trans)
    return decode_flat(_unpad(em, lens), lens, trans).sentences()


def span_score(
    emissions: np.ndarray, trans: Transitions, start: int, end: int, tags: Sequence[int]
) -> float:
    """``P(y_start..y_{end-1} = tags | x)`` for one sentence.

    Args:
        emissions: ``(L, K)`` scores of one unpadded sentence.
        trans: transition scores.
        start: first token of the span (inclusive).
        end: token after the span (exclusive).
        tags: ``(end - start,)`` tag ids of the span.

    Returns:
        The exact CRF probability (see the module docstring). For many spans of one batch use
        :func:`decode_flat` and :meth:`DecodedBatch.span_scores`, which reuse alpha and beta.
    """
    em = np.asarray(emissions, dtype=np.float64)
    if em.ndim != 2:
        raise ValueError(f"emissions must be (L, K), got shape {em.shape}")
    (decoded,) = decode_batch(em[None], np.array([em.shape[0]]), trans)
    return decoded.span_score(start, end, tags)
