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
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ner.data.schemes import parse_tag

Scheme = Literal["iob1", "iob2", "bioes", "binary"]

DISALLOWED = -1e4
"""Score given to a disallowed transition by :func:`constrain` (finite on purpose)."""

__all__ = [
    "DISALLOWED",
    "Decoded",
    "Transitions",
    "constrain",
    "constraint_mask",
    "decode_batch",
    "forward_backward",
    "is_valid_sequence",
    "log_softmax",
    "logsumexp",
    "span_score",
    "viterbi",
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
    if lens.shape != (b,) or (lens.size and not np.issubdtype(lens.dtype, np.integer)):
        raise ValueError(f"lengths must be integers of shape ({b},), got {lens.dtype} {lens.shape}")
    lens = lens.astype(np.int64)
    if lens.size and (lens.min() < 0 or lens.max() > t):
        raise ValueError(f"lengths must lie in [0, {t}], got {lens.tolist()}")
    return em, lens


def _step_scales(em: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-step max ``m (B, T)`` and ``exp(em - m) (B, T, K)``, so that no exp overflows."""
    m = em.max(axis=2) if em.shape[1] else np.zeros(em.shape[:2])
    return m, np.exp(em - m[..., None])


def _log_of(scaled: np.ndarray, log_scale: np.ndarray) -> np.ndarray:
    """log of a row-normalised vector times its scale; tiny floor keeps impossible tags finite."""
    return np.log(np.maximum(scaled, 1e-300)) + log_scale[..., None]


def _forward_log(em: np.ndarray, lens: np.ndarray, trans: Transitions) -> np.ndarray:
    """log alpha ``(B, T, K)``; rows at padded steps repeat the last valid row."""
    b, t, k = em.shape
    alpha = np.empty((b, t, k))
    if t == 0:
        return alpha
    alpha[:, 0] = trans.start + em[:, 0]
    for step in range(1, t):
        # (B, K_prev, 1) + (K_prev, K) -> logsumexp over K_prev -> (B, K)
        nxt = logsumexp(alpha[:, step - 1, :, None] + trans.transitions, axis=1) + em[:, step]
        alpha[:, step] = np.where((step < lens)[:, None], nxt, alpha[:, step - 1])
    return alpha


def _backward_log(em: np.ndarray, lens: np.ndarray, trans: Transitions) -> np.ndarray:
    """log beta ``(B, T, K)``; zero at padded steps."""
    b, t, k = em.shape
    beta = np.zeros((b, t, k))
    for step in range(t - 1, -1, -1):
        last = np.asarray(step == lens - 1)[:, None]
        if step + 1 < t:
            # (K, K) + (B, 1, K_next) -> logsumexp over K_next -> (B, K)
            inner = em[:, step + 1] + beta[:, step + 1]
            nxt = logsumexp(trans.transitions + inner[:, None, :], axis=2)
            inside = (step < lens - 1)[:, None]
            beta[:, step] = np.where(last, trans.end, np.where(inside, nxt, 0.0))
        else:
            beta[:, step] = np.where(last, trans.end, 0.0)
    return beta


def _forward_scaled(em: np.ndarray, lens: np.ndarray, trans: Transitions) -> np.ndarray:
    """log alpha ``(B, T, K)``; rows at padded steps repeat the last valid row.

    Computed in scaled probability space (Rabiner 1989): each step is one (B, K) x (K, K) matrix
    product followed by a normalisation whose log is carried separately. This is the same
    quantity as the log-space recursion, an order of magnitude faster than logsumexp over
    (B, K, K) in NumPy.
    """
    b, t, k = em.shape
    alpha = np.empty((b, t, k))
    if t == 0:
        return alpha
    m, e = _step_scales(em)
    exp_trans = np.exp(trans.transitions)  # (K, K); disallowed (-1e4) -> 0
    a0 = trans.start + em[:, 0]  # (B, K)
    c0 = a0.max(axis=1)
    hat = np.exp(a0 - c0[:, None])
    s = hat.sum(axis=1)
    hat /= s[:, None]
    log_scale = c0 + np.log(s)
    alpha[:, 0] = _log_of(hat, log_scale)
    for step in range(1, t):
        v = (hat @ exp_trans) * e[:, step]  # (B, K)
        s = v.sum(axis=1)
        live = step < lens
        safe = np.where(s > 0, s, 1.0)
        hat = np.where(live[:, None], v / safe[:, None], hat)
        log_scale = np.where(live, log_scale + m[:, step] + np.log(safe), log_scale)
        alpha[:, step] = _log_of(hat, log_scale)
    return alpha


def _backward_scaled(em: np.ndarray, lens: np.ndarray, trans: Transitions) -> np.ndarray:
    """log beta ``(B, T, K)``; zero at padded steps (scaled, like :func:`_forward`)."""
    b, t, k = em.shape
    beta = np.zeros((b, t, k))
    if t == 0:
        return beta
    m, e = _step_scales(em)
    exp_trans_t = np.exp(trans.transitions).T  # (K_next, K)
    c_end = trans.end.max()
    end_hat = np.exp(trans.end - c_end)
    end_hat = end_hat / end_hat.sum()
    end_scale = c_end + np.log(np.exp(trans.end - c_end).sum())
    hat = np.ones((b, k))
    log_scale = np.zeros(b)
    for step in range(t - 1, -1, -1):
        last = step == lens - 1
        inside = step < lens - 1
        if step + 1 < t:
            v = (e[:, step + 1] * hat) @ exp_trans_t  # (B, K)
            s = v.sum(axis=1)
            safe = np.where(s > 0, s, 1.0)
            rec_hat = v / safe[:, None]
            rec_scale = log_scale + m[:, step + 1] + np.log(safe)
        else:
            rec_hat, rec_scale = hat, log_scale
        hat = np.where(last[:, None], end_hat, np.where(inside[:, None], rec_hat, 1.0 / k))  # type: ignore[index,assignment]
        log_scale = np.where(last, end_scale, np.where(inside, rec_scale, np.log(k)))
        beta[:, step] = np.where((step < lens)[:, None], _log_of(hat, log_scale), 0.0)
    return beta


# Scaled probability space is exact up to float64 rounding while the scores stay within a few
# hundred nats of each other; beyond that (adversarial scores), use the log-space recursion.
_SCALED_RANGE = 200.0


def _scaled_ok(em: np.ndarray, trans: Transitions) -> bool:
    spreads = []
    for scores in (trans.transitions, trans.start, trans.end):
        allowed = scores[scores > DISALLOWED / 2]
        spreads.append(float(np.ptp(allowed)) if allowed.size else 0.0)
    if em.size:
        spreads.append(float(np.ptp(em, axis=2).max()))
    return max(spreads) < _SCALED_RANGE


def _forward(em: np.ndarray, lens: np.ndarray, trans: Transitions) -> np.ndarray:
    """log alpha ``(B, T, K)``; rows at padded steps repeat the last valid row."""
    if _scaled_ok(em, trans):
        return _forward_scaled(em, lens, trans)
    return _forward_log(em, lens, trans)


def _backward(em: np.ndarray, lens: np.ndarray, trans: Transitions) -> np.ndarray:
    """log beta ``(B, T, K)``; zero at padded steps."""
    if _scaled_ok(em, trans):
        return _backward_scaled(em, lens, trans)
    return _backward_log(em, lens, trans)


def _log_z(alpha: np.ndarray, lens: np.ndarray, trans: Transitions) -> np.ndarray:
    """log Z ``(B,)``; 0 for an empty sentence (one empty sequence, score 0)."""
    if alpha.shape[1] == 0:
        return np.zeros(alpha.shape[0])
    last = alpha[np.arange(alpha.shape[0]), np.maximum(lens - 1, 0)]  # (B, K)
    return np.where(lens > 0, logsumexp(last + trans.end, axis=1), 0.0)


def _viterbi(em: np.ndarray, lens: np.ndarray, trans: Transitions) -> list[np.ndarray]:
    b, t, k = em.shape
    if t == 0:
        return [np.zeros(0, dtype=np.int64) for _ in range(b)]
    score = trans.start + em[:, 0]  # (B, K)
    backpointers = np.zeros((b, t, k), dtype=np.int64)
    # Previous tags on the last, contiguous axis: the reduction runs along memory. The sums and
    # the first-maximum tie-break are the same as over (B, K_prev, K).
    into = np.ascontiguousarray(trans.transitions.T)  # (K, K_prev): into[j, i] = trans[i, j]
    active = np.arange(t)[None, :] < lens[:, None]  # (B, T)
    at_b, at_k = np.arange(b)[:, None], np.arange(k)[None, :]
    for step in range(1, t):
        cand = score[:, None, :] + into  # (B, K, K_prev)
        prev = cand.argmax(axis=2)  # (B, K)
        backpointers[:, step] = prev
        nxt = cand[at_b, at_k, prev] + em[:, step]  # the maximum, picked (cheaper than .max)
        score = np.where(active[:, step, None], nxt, score)
    best = (score + trans.end).argmax(axis=1)  # (B,) last tag of each sentence
    tags = np.zeros((b, t), dtype=np.int64)
    rows = np.arange(b)
    for step in range(t - 1, -1, -1):
        valid = active[:, step]
        tags[:, step] = np.where(valid, best, 0)
        best = np.where(valid, backpointers[rows, step, best], best)
    return [tags[i, :n] for i, n in enumerate(lens.tolist())]


# --------------------------------------------------------------------------------------------
# Public decoding API


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
    return _viterbi(em, lens, trans)


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
    return [d.marginals for d in decode_batch(emissions, lengths, trans)]


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
    paths = _viterbi(em, lens, trans)
    alpha = _forward(em, lens, trans)
    beta = _backward(em, lens, trans)
    log_z = _log_z(alpha, lens, trans)
    out = []
    for i, length in enumerate(lens.tolist()):
        a, b_ = alpha[i, :length], beta[i, :length]
        marginals = np.exp(a + b_ - log_z[i])
        out.append(
            Decoded(
                tag_ids=paths[i],
                marginals=np.minimum(marginals, 1.0),
                log_z=float(log_z[i]),
                emissions=em[i, :length],
                log_alpha=a,
                log_beta=b_,
                trans=trans,
            )
        )
    return out


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
        :func:`decode_batch` and :meth:`Decoded.span_score`, which reuse alpha and beta.
    """
    em = np.asarray(emissions, dtype=np.float64)
    if em.ndim != 2:
        raise ValueError(f"emissions must be (L, K), got shape {em.shape}")
    (decoded,) = decode_batch(em[None], np.array([em.shape[0]]), trans)
    return decoded.span_score(start, end, tags)
