"""The many-to-one sentence classifier: inputs -> stacked BiRNN -> pooling over time -> softmax.

The seed notes' "many to one" architecture (sentiment classification: x<1>..x<Tx> in, one y out).
The shared input stack (``ner.nn.inputs``) gives x<t>, a stacked bidirectional LSTM/GRU
(``ner.nn.encoder``) gives a<1>..a<Tx>, a pooling step turns them into one sentence vector, and a
linear layer gives K class scores (logits); the softmax, with the temperature fitted on dev, runs
in NumPy (``ner.classify``).

Pooling (``ClassifierConfig.pooling``):

- ``last``: the top layer's final state, as in the seed notes' picture, where only the last
  step emits y. For a BiRNN it is the forward a<Tx> next to the backward a<1>.
- ``max``: the element-wise maximum of a<t> over the real steps (Collobert et al. 2011; the
  "BiLSTM-max" of Conneau et al. 2017).
- ``mean``: the average of a<t> over the real steps.
- ``attention``: sum_t alpha<t> a<t> with alpha = softmax_t(v . tanh(W a<t> + b)), the word
  attention of Yang et al. (2016).

Every pooling reads only steps t < length, so a sentence gets the same logits alone and inside a
padded batch. The part from word vectors to logits (``logits_from_vectors``) is what the bundle
exports to ONNX.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ner.models.config import ClassifierConfig, Pooling
from ner.nn.encoder import EncoderConfig, RNNEncoder
from ner.nn.inputs import InputStack, from_vectors_graph, installed_glove

__all__ = ["Classifier", "Head", "Pool", "logits_graph"]

_NEG = -1e4
"""Score of a padded step before the attention softmax: finite, so that an empty sentence gets
uniform weights over zero vectors (a zero sentence vector) instead of NaN."""


class Pool(nn.Module):
    """a (B, T, H), final (B, H), lengths (B,) -> sentence vector (B, H)."""

    def __init__(self, kind: Pooling, size: int, attention_size: int = 64) -> None:
        super().__init__()
        if kind not in ("last", "max", "mean", "attention"):
            raise ValueError(f"unknown pooling {kind!r}")
        self.kind = kind
        self.score: nn.Module | None = None
        if kind == "attention":
            self.score = nn.Sequential(
                nn.Linear(size, attention_size), nn.Tanh(), nn.Linear(attention_size, 1)
            )

    def forward(self, a: Tensor, final: Tensor, lengths: Tensor) -> Tensor:
        """a (B, T, H) (zero at padded steps), final (B, H), lengths (B,) -> (B, H).

        An empty sentence (length 0) pools to zeros.
        """
        if self.kind == "last":
            return final
        mask = torch.arange(a.shape[1], device=a.device).unsqueeze(0) < lengths.unsqueeze(1)
        if self.kind == "mean":
            n = lengths.clamp(min=1).unsqueeze(1).to(a.dtype)  # (B, 1)
            return a.sum(dim=1) / n  # padded steps of a are zero
        if self.kind == "max":
            pooled = a.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(dim=1)  # (B, H)
            return torch.where((lengths > 0).unsqueeze(1), pooled, torch.zeros_like(pooled))
        assert self.score is not None
        scores = self.score(a).squeeze(-1).masked_fill(~mask, _NEG)  # (B, T)
        alpha = torch.softmax(scores, dim=1)  # (B, T)
        return (alpha.unsqueeze(-1) * a).sum(dim=1)

    def weights(self, a: Tensor, lengths: Tensor) -> Tensor:
        """Attention weights alpha (B, T) (attention pooling only), for inspection."""
        if self.score is None:
            raise ValueError(f"{self.kind} pooling has no attention weights")
        mask = torch.arange(a.shape[1], device=a.device).unsqueeze(0) < lengths.unsqueeze(1)
        return torch.softmax(self.score(a).squeeze(-1).masked_fill(~mask, _NEG), dim=1)


class Head(nn.Module):
    """One member: x (B, T, D_in), lengths (B,) -> encoder, pooling, dropout -> logits (B, K)."""

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        self.encoder = RNNEncoder(EncoderConfig.of(config.inputs.output_size, config.rnn))
        size = config.rnn.output_size
        self.pool = Pool(config.pooling, size, config.attention_size)
        self.dropout = nn.Dropout(config.dropout)
        self.proj = nn.Linear(size, config.num_classes)

    def sentence_vectors(self, x: Tensor, lengths: Tensor) -> Tensor:
        """x (B, T, D_in), lengths (B,) -> pooled sentence vectors (B, H)."""
        a, final = self.encoder.encode(x, lengths)  # (B, T, H), (L, B, H)
        return self.pool(a, final[-1], lengths)  # (B, H)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        """x (B, T, D_in), lengths (B,) -> logits (B, K)."""
        return self.proj(self.dropout(self.sentence_vectors(x, lengths)))


class Classifier(nn.Module):
    """Word, char and casing ids -> class logits (B, K); cross-entropy loss.

    With ``members`` > 1 the heads share the input stack and their logits are combined as the
    mean of their log-probabilities (a geometric-mean ensemble); each head is trained on its own
    cross-entropy (:meth:`member_logits`, :meth:`loss`), so they stay independent models.
    """

    def __init__(self, config: ClassifierConfig, glove_vectors: np.ndarray | None = None) -> None:
        super().__init__()
        if config.num_classes < 2:
            raise ValueError(f"ClassifierConfig.num_classes must be >= 2, got {config.num_classes}")
        if config.members < 1:
            raise ValueError(f"ClassifierConfig.members must be >= 1, got {config.members}")
        self.config = config
        self.inputs = InputStack(config.inputs, glove_vectors)
        self.heads = nn.ModuleList(Head(config) for _ in range(config.members))

    @classmethod
    def build(cls, config: ClassifierConfig) -> Classifier:
        """A classifier with the installed GloVe table when it uses GloVe."""
        return cls(config, installed_glove(config.inputs))

    def sentence_vectors(
        self, word_vectors: Tensor, char_ids: Tensor, casing_ids: Tensor, lengths: Tensor
    ) -> Tensor:
        """word_vectors (B, T, D), char_ids (B, T, C), casing_ids (B, T), lengths (B,) ->
        the first head's pooled sentence vectors (B, H)."""
        x = self.inputs.from_vectors(word_vectors, char_ids, casing_ids)  # (B, T, D_in)
        head: Head = self.heads[0]  # type: ignore[assignment]
        return head.sentence_vectors(x, lengths)

    def member_logits_from_vectors(
        self, word_vectors: Tensor, char_ids: Tensor, casing_ids: Tensor, lengths: Tensor
    ) -> Tensor:
        """word_vectors (B, T, D), char_ids (B, T, C), casing_ids (B, T), lengths (B,) ->
        every head's logits (M, B, K)."""
        x = self.inputs.from_vectors(word_vectors, char_ids, casing_ids)  # (B, T, D_in)
        return torch.stack([head(x, lengths) for head in self.heads])

    def logits_from_vectors(
        self, word_vectors: Tensor, char_ids: Tensor, casing_ids: Tensor, lengths: Tensor
    ) -> Tensor:
        """word_vectors (B, T, D), char_ids (B, T, C), casing_ids (B, T), lengths (B,) ->
        logits (B, K)."""
        member = self.member_logits_from_vectors(word_vectors, char_ids, casing_ids, lengths)
        if len(self.heads) == 1:
            return member[0]
        return F.log_softmax(member, dim=-1).mean(dim=0)  # (B, K)

    def member_logits(
        self,
        word_ids: Tensor,
        glove_ids: Tensor,
        char_ids: Tensor,
        casing_ids: Tensor,
        lengths: Tensor,
    ) -> Tensor:
        """Ids (B, T) / (B, T, C), lengths (B,) -> every head's logits (M, B, K) (training)."""
        vectors = self.inputs.word_vectors(word_ids, glove_ids)  # (B, T, D)
        return self.member_logits_from_vectors(vectors, char_ids, casing_ids, lengths)

    def forward(
        self,
        word_ids: Tensor,
        glove_ids: Tensor,
        char_ids: Tensor,
        casing_ids: Tensor,
        lengths: Tensor,
    ) -> Tensor:
        """Ids (B, T) / (B, T, C), lengths (B,) -> logits (B, K)."""
        vectors = self.inputs.word_vectors(word_ids, glove_ids)  # (B, T, D)
        return self.logits_from_vectors(vectors, char_ids, casing_ids, lengths)

    def loss(self, logits: Tensor, labels: Tensor, label_smoothing: float = 0.0) -> Tensor:
        """logits (B, K) or member logits (M, B, K), labels (B,) -> mean cross-entropy (over
        the heads too)."""
        if logits.dim() == 3:
            m, b, k = logits.shape
            logits, labels = logits.reshape(m * b, k), labels.repeat(m)
        return F.cross_entropy(logits, labels, label_smoothing=label_smoothing)

    def training_loss(
        self,
        word_ids: Tensor,
        glove_ids: Tensor,
        char_ids: Tensor,
        casing_ids: Tensor,
        lengths: Tensor,
        labels: Tensor,
        *,
        label_smoothing: float = 0.0,
        adversarial: float = 0.0,
    ) -> Tensor:
        """The training loss of a batch: every head's cross-entropy and, with ``adversarial``
        = epsilon > 0, the cross-entropy on adversarially moved word vectors too.

        Adversarial training (Goodfellow et al. 2015 on images; Miyato et al. 2017, "Adversarial
        training methods for semi-supervised text classification", on word embeddings): each
        sentence's word vectors e (T, D) are moved by r_adv = epsilon g / ||g||_2, where g is the
        gradient of the loss with respect to e, the worst direction of a linear approximation of
        the loss; the loss there is added to the plain one. It smooths the model around the
        training sentences; the padded steps get no gradient, so they do not move.
        """
        vectors = self.inputs.word_vectors(word_ids, glove_ids)  # (B, T, D)
        rest = (char_ids, casing_ids, lengths)
        loss = self.loss(self.member_logits_from_vectors(vectors, *rest), labels, label_smoothing)
        if adversarial <= 0:
            return loss
        (g,) = torch.autograd.grad(loss, vectors, retain_graph=True)  # (B, T, D)
        norm = g.flatten(1).norm(dim=1).clamp(min=1e-12)  # (B,)
        r_adv = adversarial * g.detach() / norm.view(-1, 1, 1)
        moved = self.member_logits_from_vectors(vectors + r_adv, *rest)
        return loss + self.loss(moved, labels, label_smoothing)

    def word_table(self) -> np.ndarray:
        """The trainable word table (V, D) float32, as the bundle stores it."""
        return self.inputs.word_table()


LOGITS = "logits"


def logits_graph(model: Classifier, tables: Any) -> Any:
    """The classifier's ONNX graph: word_vectors (B, T, D), char_ids (B, T, C), casing_ids (B, T),
    lengths (B,) -> logits (B, K); batch, time and character axes are dynamic."""
    return from_vectors_graph(model, "logits_from_vectors", tables, LOGITS, {0: "batch"}, atol=1e-5)
