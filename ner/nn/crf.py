"""Batched linear-chain conditional random field in PyTorch.

Lafferty, McCallum and Pereira (2001), "Conditional Random Fields: Probabilistic Models for
Segmenting and Labeling Sequence Data"; as a BiLSTM tagger's output layer: Lample et al. (2016),
"Neural Architectures for Named Entity Recognition". Docstring style after kmkurn/pytorch-crf.

Training minimises the negative log-likelihood ``log Z(x) - score(x, y)`` with ``log Z`` from the
forward algorithm, vectorised over the batch and the tags (the loop runs over time only). The
score of a sequence is ``start[y_0] + sum_t emit_t(y_t) + sum_t trans[y_{t-1}, y_t] +
end[y_{L-1}]``, exactly as in :mod:`ner.decode`, which does the decoding at inference time
(:meth:`CRF.to_transitions` hands the parameters over). :meth:`CRF.viterbi` is a torch twin for
quick decoding during validation.

Optional constraints (e.g. IOB2: ``I-X`` only after ``B-X``/``I-X``) are boolean buffers; every
score computation, training included, replaces the disallowed entries by ``-1e4``, so the model
never spends probability mass on invalid sequences and those parameters get no gradient.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from ner.decode import DISALLOWED, Scheme, Transitions, constraint_mask


@dataclass(frozen=True)
class CRFConfig:
    """Configuration of :class:`CRF`.

    Attributes:
        num_tags: number of tags ``K``.
    """

    num_tags: int


def _bool_buffer(value: Tensor | np.ndarray | None, shape: tuple[int, ...], name: str) -> Tensor:
    if value is None:
        return torch.ones(shape, dtype=torch.bool)
    out = torch.as_tensor(np.asarray(value) if isinstance(value, np.ndarray) else value)
    if out.dtype != torch.bool or tuple(out.shape) != shape:
        raise ValueError(
            f"{name} must be a bool tensor of shape {shape}, got {out.dtype} {out.shape}"
        )
    return out.clone()


class CRF(nn.Module):
    """Linear-chain CRF over per-token emission scores.

    Args:
        config: the :class:`CRFConfig`.
        allowed: ``(K, K)`` bool, ``allowed[i, j]`` iff tag ``i`` may be followed by tag ``j``.
            ``None`` allows everything.
        allowed_start: ``(K,)`` bool, tags a sentence may start with.
        allowed_end: ``(K,)`` bool, tags a sentence may end with.

    Attributes:
        transitions: ``(K, K)`` parameter, score of tag ``i`` followed by tag ``j``.
        start: ``(K,)`` parameter, score of starting with each tag.
        end: ``(K,)`` parameter, score of ending with each tag.
        allowed, allowed_start, allowed_end: the constraint buffers (saved in the state_dict).
    """

    def __init__(
        self,
        config: CRFConfig,
        allowed: Tensor | np.ndarray | None = None,
        allowed_start: Tensor | np.ndarray | None = None,
        allowed_end: Tensor | np.ndarray | None = None,
    ) -> None:
        super().__init__()
        if config.num_tags < 1:
            raise ValueError(f"num_tags must be positive, got {config.num_tags}")
        self.config = config
        k = config.num_tags
        # Small uniform initialisation, as in pytorch-crf.
        self.transitions = nn.Parameter(torch.empty(k, k).uniform_(-0.1, 0.1))
        self.start = nn.Parameter(torch.empty(k).uniform_(-0.1, 0.1))
        self.end = nn.Parameter(torch.empty(k).uniform_(-0.1, 0.1))
        self.register_buffer("allowed", _bool_buffer(allowed, (k, k), "allowed"))
        self.register_buffer("allowed_start", _bool_buffer(allowed_start, (k,), "allowed_start"))
        self.register_buffer("allowed_end", _bool_buffer(allowed_end, (k,), "allowed_end"))

    @classmethod
    def for_labels(cls, labels: Sequence[str], scheme: Scheme) -> CRF:
        """A CRF over ``labels`` constrained by ``scheme`` (see ``ner.decode.constraint_mask``)."""
        allowed, allowed_start, allowed_end = constraint_mask(labels, scheme)
        return cls(CRFConfig(num_tags=len(labels)), allowed, allowed_start, allowed_end)

    @property
    def num_tags(self) -> int:
        return self.config.num_tags

    def extra_repr(self) -> str:
        return f"num_tags={self.num_tags}, constrained={not bool(self.allowed.all())}"

    def scores(self) -> tuple[Tensor, Tensor, Tensor]:
        """Constrained ``(transitions (K, K), start (K,), end (K,))``: disallowed -> ``-1e4``."""
        return (
            self.transitions.masked_fill(~self.allowed, DISALLOWED),
            self.start.masked_fill(~self.allowed_start, DISALLOWED),
            self.end.masked_fill(~self.allowed_end, DISALLOWED),
        )

    @staticmethod
    def _prepare(emissions: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Check shapes; return float emissions, long lengths and the mask ``(B, T)``."""
        if emissions.dim() != 3:
            raise ValueError(f"emissions must be (B, T, K), got {tuple(emissions.shape)}")
        b, t, _ = emissions.shape
        if tuple(lengths.shape) != (b,):
            raise ValueError(f"lengths must be ({b},), got {tuple(lengths.shape)}")
        if emissions.dtype in (torch.float16, torch.bfloat16):
            emissions = emissions.float()  # logsumexp in half precision loses too much
        lengths = lengths.to(device=emissions.device, dtype=torch.long)
        mask = torch.arange(t, device=emissions.device)[None, :] < lengths[:, None]  # (B, T)
        return emissions, lengths, mask

    def forward(self, emissions: Tensor, tags: Tensor, lengths: Tensor) -> Tensor:
        """Negative log-likelihood per sentence; same as :meth:`nll`."""
        return self.nll(emissions, tags, lengths)

    def nll(self, emissions: Tensor, tags: Tensor, lengths: Tensor) -> Tensor:
        """Negative log-likelihood ``log Z(x) - score(x, y)`` of the gold tags.

        Args:
            emissions: ``(B, T, K)`` emission scores.
            tags: ``(B, T)`` gold tag ids; padded positions are ignored (any value).
            lengths: ``(B,)`` true lengths, ``0 <= lengths <= T``.

        Returns:
            ``(B,)`` NLL per sentence (``0`` for an empty sentence). Reduce it yourself.
        """
        emissions, lengths, mask = self._prepare(emissions, lengths)
        if tuple(tags.shape) != tuple(mask.shape):
            raise ValueError(f"tags must be {tuple(mask.shape)}, got {tuple(tags.shape)}")
        return self.log_partition(emissions, lengths) - self._path_score(emissions, tags, mask)

    def _path_score(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """``score(x, y)`` ``(B,)`` for tags ``(B, T)`` under ``mask (B, T)``."""
        trans, start, end = self.scores()
        b, t, _ = emissions.shape
        if t == 0:
            return emissions.new_zeros(b)
        tags = tags.long().masked_fill(~mask, 0)  # padding may hold -100 etc.
        emit = emissions.gather(2, tags.unsqueeze(-1)).squeeze(-1)  # (B, T)
        zero = emissions.new_zeros(())
        score = torch.where(mask, emit, zero).sum(1)
        pair = trans[tags[:, :-1], tags[:, 1:]]  # (B, T-1)
        score = score + torch.where(mask[:, 1:], pair, zero).sum(1)
        nonempty = mask[:, 0]
        last = tags.gather(1, (mask.sum(1) - 1).clamp(min=0).unsqueeze(1)).squeeze(1)  # (B,)
        return score + torch.where(nonempty, start[tags[:, 0]] + end[last], zero)

    def log_partition(self, emissions: Tensor, lengths: Tensor) -> Tensor:
        """``log Z(x)`` by the forward algorithm.

        Args:
            emissions: ``(B, T, K)`` emission scores.
            lengths: ``(B,)`` true lengths.

        Returns:
            ``(B,)`` log partition function (``0`` for an empty sentence).
        """
        emissions, lengths, mask = self._prepare(emissions, lengths)
        trans, start, end = self.scores()
        b, t, _ = emissions.shape
        if t == 0:
            return emissions.new_zeros(b)
        alpha = start + emissions[:, 0]  # (B, K)
        for step in range(1, t):
            # (B, K_prev, 1) + (K_prev, K) + (B, 1, K) -> logsumexp over K_prev -> (B, K)
            nxt = torch.logsumexp(alpha.unsqueeze(2) + trans + emissions[:, step].unsqueeze(1), 1)
            alpha = torch.where(mask[:, step].unsqueeze(1), nxt, alpha)
        log_z = torch.logsumexp(alpha + end, dim=1)
        return torch.where(lengths > 0, log_z, log_z.new_zeros(()))

    @torch.no_grad()
    def viterbi(self, emissions: Tensor, lengths: Tensor) -> list[list[int]]:
        """Best tag sequence per sentence (torch twin of ``ner.decode.viterbi``).

        Args:
            emissions: ``(B, T, K)`` emission scores.
            lengths: ``(B,)`` true lengths.

        Returns:
            ``B`` lists of tag ids, ``len == lengths[b]``.
        """
        emissions, lengths, mask = self._prepare(emissions, lengths)
        trans, start, end = self.scores()
        b, t, k = emissions.shape
        if t == 0:
            return [[] for _ in range(b)]
        score = start + emissions[:, 0]  # (B, K)
        backpointers = []
        for step in range(1, t):
            best, idx = (score.unsqueeze(2) + trans).max(dim=1)  # (B, K) over K_prev
            backpointers.append(idx)
            score = torch.where(mask[:, step].unsqueeze(1), best + emissions[:, step], score)
        best_tag = (score + end).argmax(dim=1)  # (B,)
        tags = torch.zeros(b, t, dtype=torch.long, device=emissions.device)
        for step in range(t - 1, -1, -1):
            valid = mask[:, step]
            tags[:, step] = best_tag
            if step > 0:
                prev = backpointers[step - 1].gather(1, best_tag.unsqueeze(1)).squeeze(1)
                best_tag = torch.where(valid, prev, best_tag)
        return [tags[i, : int(n)].tolist() for i, n in enumerate(lengths)]

    def to_transitions(self) -> Transitions:
        """The constrained scores as NumPy ``ner.decode.Transitions`` (float64)."""
        trans, start, end = (x.detach().cpu().double().numpy() for x in self.scores())
        return Transitions(trans, start, end)
