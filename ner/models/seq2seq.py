"""The encoder-decoder (Tx != Ty): machine translation, dates to ISO.

The seed notes' last many-to-many shape: an encoder reads the whole input x<1>..x<Tx>, a decoder
writes y<1>..y<Ty>, one token per step, each step reading the token it wrote before (Sutskever et
al. 2014; Cho et al. 2014).

- Encoder: the shared input stack (``ner.nn.inputs``; characters or words) and a stacked
  (bi)directional GRU/LSTM (``ner.nn.encoder``) give the memory h<1>..h<Tx>.
- Bridge: the decoder's initial state s<0> of every layer is tanh(W_b final + b_b), where
  ``final`` is the encoder's top-layer final state (a BiRNN: forward h<Tx> next to backward h<1>).
- Attention (Bahdanau et al. 2015): at step t the previous top-layer state s<t-1> asks the memory
  which inputs matter. ``alpha<t,t'> = softmax_t'(e<t,t'>)`` over the real input steps and the
  context is ``c<t> = sum_t' alpha<t,t'> h<t'>``. The score e is

    additive       (Bahdanau):  e = v . tanh(W_q s<t-1> + W_k h<t'>)
    multiplicative (Luong et al. 2015, "general"):  e = s<t-1> . (W_k h<t'>)

  Both use the previous state as the query (Bahdanau's order), so the context can be fed to the
  decoder RNN with y<t-1>. ``none`` is the plain encoder-decoder, which sees the input only
  through s<0>.
- Decoder step: s<t> = RNN([E y<t-1>, c<t>], s<t-1>); the output layer reads
  o<t> = tanh(W_c [s<t>, c<t>]) (Luong's attentional state; without attention o<t> = s<t>) and
  gives log P(y<t> | y<1..t-1>, x) = log_softmax(W_o o<t> + b_o).

Training uses teacher forcing (the reference y<t-1> is fed back); inference (greedy and beam
search) runs in NumPy over two exported graphs, ``encoder`` and ``decoder_step``
(``ner.translate``), so the loop is the same for ONNX Runtime and torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ner.models.config import Attention, Seq2SeqConfig
from ner.nn.encoder import EncoderConfig, RNNEncoder
from ner.nn.inputs import InputStack

__all__ = ["ENCODER", "STEP", "AttentionScorer", "Seq2Seq", "encoder_graph", "step_graph"]

ENCODER, STEP = "encoder", "decoder_step"
"""Graph keys of a seq2seq bundle."""

_NEG = -1e4
"""Score of a padded input step before the softmax: exp underflows to exactly 0 in float32."""


def source_mask(lengths: Tensor, steps: int) -> Tensor:
    """lengths (B,) -> mask (B, Tx), True at real input steps."""
    return torch.arange(steps, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


class AttentionScorer(nn.Module):
    """Scores e<t,t'> of the query s<t-1> against the memory h<t'>, and the context c<t>.

    The memory's projection W_k h<t'> (the keys) does not depend on t, so the encoder computes it
    once (:meth:`keys`) and every decoder step reuses it.
    """

    def __init__(self, kind: Attention, memory_size: int, query_size: int, size: int) -> None:
        super().__init__()
        if kind not in ("none", "additive", "multiplicative"):
            raise ValueError(f"unknown attention {kind!r}")
        self.kind = kind
        self.W_k: nn.Linear | None = None
        self.W_q: nn.Linear | None = None
        self.v: nn.Linear | None = None
        if kind == "additive":
            self.W_k = nn.Linear(memory_size, size, bias=True)
            self.W_q = nn.Linear(query_size, size, bias=False)
            self.v = nn.Linear(size, 1, bias=False)
        elif kind == "multiplicative":
            self.W_k = nn.Linear(memory_size, query_size, bias=False)

    def keys(self, memory: Tensor) -> Tensor:
        """memory (B, Tx, M) -> keys (B, Tx, K): W_k h<t'> (the memory itself without attention)."""
        return memory if self.W_k is None else self.W_k(memory)

    def forward(
        self, query: Tensor, keys: Tensor, memory: Tensor, lengths: Tensor
    ) -> tuple[Tensor, Tensor]:
        """query (B, Q), keys (B, Tx, K), memory (B, Tx, M), lengths (B,) ->
        (context c<t> (B, M), alpha (B, Tx)); padded input steps get weight exactly 0."""
        if self.kind == "additive":
            assert self.W_q is not None and self.v is not None
            energy = torch.tanh(self.W_q(query).unsqueeze(1) + keys)  # (B, Tx, A)
            scores = self.v(energy).squeeze(-1)  # (B, Tx)
        else:
            scores = torch.bmm(keys, query.unsqueeze(-1)).squeeze(-1)  # (B, Tx)
        scores = scores.masked_fill(~source_mask(lengths, keys.shape[1]), _NEG)
        alpha = torch.softmax(scores, dim=1)  # (B, Tx)
        context = torch.bmm(alpha.unsqueeze(1), memory).squeeze(1)  # (B, M)
        return context, alpha


class Seq2Seq(nn.Module):
    """Source ids (B, Tx) -> log-probabilities of the target tokens, one decoder step at a time."""

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        if config.target_vocab_size < 5:
            raise ValueError(
                "Seq2SeqConfig.target_vocab_size must be >= 5 (<pad>, <unk>, <s>, </s> and a "
                f"token), got {config.target_vocab_size}"
            )
        if config.decoder.bidirectional:
            raise ValueError(
                "the decoder writes left to right: decoder.bidirectional must be false"
            )
        if config.inputs.uses_chars or config.inputs.casing_dim or config.inputs.uses_glove:
            raise ValueError(
                "a seq2seq source is one token stream: inputs.word_input onehot or learned, "
                "char_encoder none, casing_dim 0"
            )
        self.config = config
        self.inputs = InputStack(config.inputs)
        self.encoder = RNNEncoder(EncoderConfig.of(config.inputs.output_size, config.encoder))
        memory_size = config.encoder.output_size
        dec = config.decoder
        self.bridge = nn.Linear(memory_size, dec.num_layers * dec.state_size)
        self.attention = AttentionScorer(
            config.attention, memory_size, dec.hidden_size, config.attention_size
        )
        context_size = 0 if config.attention == "none" else memory_size
        self.target_embedding = nn.Embedding(
            config.target_vocab_size, config.target_dim, padding_idx=0
        )
        self.decoder = RNNEncoder(EncoderConfig.of(config.target_dim + context_size, dec))
        self.combine: nn.Linear | None = None
        if config.attention != "none":
            self.combine = nn.Linear(dec.hidden_size + memory_size, dec.hidden_size)
        self.dropout = nn.Dropout(config.dropout)
        self.proj = nn.Linear(dec.hidden_size, config.target_vocab_size)

    # ---------------------------------------------------------------- encoder

    def encode_vectors(
        self, word_vectors: Tensor, lengths: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """word_vectors (B, Tx, D), lengths (B,) -> (memory (B, Tx, M), keys (B, Tx, K),
        state s<0> (L, B, S)); memory is zero at padded steps."""
        unused = word_vectors.new_zeros(0)  # no character or casing features (checked in init)
        x = self.inputs.from_vectors(word_vectors, unused, unused)  # (B, Tx, D_in)
        memory, final = self.encoder.encode(x, lengths)  # (B, Tx, M), (L_enc, B, M)
        dec = self.config.decoder
        state = torch.tanh(self.bridge(final[-1]))  # (B, L * S)
        state = state.view(-1, dec.num_layers, dec.state_size).transpose(0, 1)  # (L, B, S)
        return memory, self.attention.keys(memory), state.contiguous()

    def encode(self, source_ids: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """source_ids (B, Tx), lengths (B,) -> (memory, keys, state s<0>) as
        :meth:`encode_vectors`."""
        vectors = self.inputs.word_vectors(source_ids, torch.zeros_like(source_ids))
        return self.encode_vectors(vectors, lengths)

    # ---------------------------------------------------------------- decoder

    def step(
        self, prev_ids: Tensor, state: Tensor, memory: Tensor, keys: Tensor, lengths: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One decoder step.

        prev_ids y<t-1> (B,), state s<t-1> (L, B, S), memory (B, Tx, M), keys (B, Tx, K),
        lengths (B,) -> (log_probs (B, V), state s<t> (L, B, S), alpha<t> (B, Tx)); without
        attention alpha is all zeros.
        """
        y = self.target_embedding(prev_ids)  # (B, E)
        hidden = self.config.decoder.hidden_size
        if self.combine is None:
            alpha = torch.zeros_like(keys[..., 0])  # (B, Tx)
            a, new_state = self.decoder.step(y.unsqueeze(1), state)  # (B, 1, H)
            out = a.squeeze(1)  # (B, H)
        else:
            query = state[-1, :, :hidden]  # top layer's s<t-1> (B, H)
            context, alpha = self.attention(query, keys, memory, lengths)  # (B, M), (B, Tx)
            x = torch.cat([y, context], dim=-1).unsqueeze(1)  # (B, 1, E + M)
            a, new_state = self.decoder.step(x, state)  # (B, 1, H)
            out = torch.tanh(self.combine(torch.cat([a.squeeze(1), context], dim=-1)))  # (B, H)
        log_probs = F.log_softmax(self.proj(self.dropout(out)), dim=-1)  # (B, V)
        return log_probs, new_state, alpha

    def forward(
        self, source_ids: Tensor, lengths: Tensor, prev_ids: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Teacher forcing: source_ids (B, Tx), lengths (B,), prev_ids (B, Ty) (<s> then the
        reference y<1..Ty-1>) -> (log_probs (B, Ty, V), alpha (B, Ty, Tx))."""
        memory, keys, state = self.encode(source_ids, lengths)
        steps, weights = [], []
        for t in range(prev_ids.shape[1]):
            log_probs, state, alpha = self.step(prev_ids[:, t], state, memory, keys, lengths)
            steps.append(log_probs)
            weights.append(alpha)
        return torch.stack(steps, dim=1), torch.stack(weights, dim=1)

    @staticmethod
    def loss(log_probs: Tensor, targets: Tensor, label_smoothing: float = 0.0) -> Tensor:
        """log_probs (B, Ty, V), targets (B, Ty) (0 = padding) -> mean NLL per target token."""
        v = log_probs.shape[-1]
        return F.nll_loss(log_probs.reshape(-1, v), targets.reshape(-1), ignore_index=0) * (
            1.0 - label_smoothing
        ) - label_smoothing * _mean_log_prob(log_probs, targets)

    def word_table(self) -> np.ndarray:
        """The trainable source table (V, D) float32, as the bundle stores it."""
        return self.inputs.word_table()


def _mean_log_prob(log_probs: Tensor, targets: Tensor) -> Tensor:
    """Mean over real target steps of the mean log-probability over the vocabulary (the uniform
    part of label smoothing)."""
    mask = targets > 0
    if not mask.any():
        return log_probs.new_zeros(())
    return log_probs.mean(dim=-1)[mask].mean()


# ---------------------------------------------------------------------------- graphs


class _EncoderGraph(nn.Module):
    def __init__(self, model: Seq2Seq) -> None:
        super().__init__()
        self.model = model

    def forward(self, word_vectors: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """word_vectors (B, Tx, D), lengths (B,) -> memory, keys, state."""
        return self.model.encode_vectors(word_vectors, lengths)


class _StepGraph(nn.Module):
    def __init__(self, model: Seq2Seq) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, prev_ids: Tensor, state: Tensor, memory: Tensor, keys: Tensor, lengths: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """prev_ids (B,), state (L, B, S), memory, keys, lengths -> log_probs, state, alpha."""
        return self.model.step(prev_ids, state, memory, keys, lengths)


def _lengths(rng: np.random.Generator, variant: int) -> tuple[np.ndarray, int]:
    lengths = np.array([5, 2] if variant == 0 else [7, 1, 4], dtype=np.int64)
    return lengths, int(lengths.max())


def encoder_graph(model: Seq2Seq, table: np.ndarray) -> Any:
    """The ``encoder`` graph: word_vectors (B, Tx, D), lengths (B,) -> memory (B, Tx, M),
    keys (B, Tx, K), state (L, B, S). ``table`` is the source table as the bundle stores it."""
    from ner.bundle import Graph

    def example(rng: np.random.Generator, variant: int) -> dict[str, np.ndarray]:
        lengths, t = _lengths(rng, variant)
        ids = rng.integers(1, table.shape[0], size=(len(lengths), t))
        ids = ids * (np.arange(t)[None, :] < lengths[:, None])
        return {"word_vectors": table[ids].astype(np.float32), "lengths": lengths}

    return Graph(
        module=_EncoderGraph(model),
        inputs=("word_vectors", "lengths"),
        outputs=("memory", "keys", "state"),
        dynamic_axes={
            "word_vectors": {0: "batch", 1: "time"},
            "lengths": {0: "batch"},
            "memory": {0: "batch", 1: "time"},
            "keys": {0: "batch", 1: "time"},
            "state": {1: "batch"},
        },
        example=example,
    )


def step_graph(model: Seq2Seq) -> Any:
    """The ``decoder_step`` graph: prev_ids (B,), state (L, B, S), memory (B, Tx, M),
    keys (B, Tx, K), lengths (B,) -> log_probs (B, V), new_state (L, B, S), attention (B, Tx)."""
    from ner.bundle import Graph

    config = model.config
    dec = config.decoder
    memory_size = config.encoder.output_size
    key_size = {"none": memory_size, "additive": config.attention_size}.get(
        config.attention, dec.hidden_size
    )

    def example(rng: np.random.Generator, variant: int) -> dict[str, np.ndarray]:
        lengths, t = _lengths(rng, variant)
        b = len(lengths)
        mask = (np.arange(t)[None, :] < lengths[:, None])[..., None]
        return {
            "prev_ids": rng.integers(0, config.target_vocab_size, size=b).astype(np.int64),
            "state": rng.uniform(-0.9, 0.9, (dec.num_layers, b, dec.state_size)).astype(np.float32),
            "memory": (rng.normal(size=(b, t, memory_size)) * mask).astype(np.float32),
            "keys": rng.normal(size=(b, t, key_size)).astype(np.float32),
            "lengths": lengths,
        }

    return Graph(
        module=_StepGraph(model),
        inputs=("prev_ids", "state", "memory", "keys", "lengths"),
        outputs=("log_probs", "new_state", "attention"),
        dynamic_axes={
            "prev_ids": {0: "batch"},
            "state": {1: "batch"},
            "memory": {0: "batch", 1: "time"},
            "keys": {0: "batch", 1: "time"},
            "lengths": {0: "batch"},
            "log_probs": {0: "batch"},
            "new_state": {1: "batch"},
            "attention": {0: "batch", 1: "time"},
        },
        example=example,
    )
