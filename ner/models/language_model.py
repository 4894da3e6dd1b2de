"""RNN language models (many-to-many with x<t> = y<t-1>) and the one-to-many conditional model.

The seed notes' language model: every sequence ends with <EOS>; x<1> is the start input (the
vocabulary's id 0, whose vector is the zero vector for a learned table) and x<t> = y<t-1>, so the
softmax ŷ<t> at step t is P(y<t> | y<1>, ..., y<t-1>) and

    P(y<1>, ..., y<Ty>) = Π_t P(y<t> | y<1..t-1>),

trained with the softmax cross-entropy summed over time steps. The conditional model (the notes'
music-genre example: x is one integer, y a sequence) embeds the class c as e_c and uses it as
a<0> = tanh(W_init e_c + b_init), concatenates it to x<t> at every step, or both.

What a bundle exports to ONNX is one time step (:func:`step_graph`: word vectors of y<t-1> and
the state in, logits of ŷ<t> and the new state out) and, for a conditional model, the initial
state from the class (:func:`init_graph`); sampling and scoring loop over the step in NumPy
(``ner.generate``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ner.bundle import Graph
from ner.models.config import LanguageModelConfig
from ner.nn.encoder import EncoderConfig, RNNEncoder
from ner.nn.inputs import InputStack, installed_glove

START = 0
"""Id of x<1>, the start input (the vocabulary's <pad>: never a target, zero for learned tables)."""


class LanguageModel(nn.Module):
    """Token ids (B, T) -> logits (B, T, V) of ŷ<t> = P(y<t> | y<1..t-1>, c)."""

    def __init__(
        self, config: LanguageModelConfig, glove_vectors: np.ndarray | None = None
    ) -> None:
        super().__init__()
        if config.rnn.bidirectional:
            raise ValueError(
                "a language model needs a unidirectional RNN (rnn.bidirectional: false)"
            )
        if config.inputs.uses_chars or config.inputs.casing_dim:
            raise ValueError("a language model reads token ids only (char_encoder none, casing 0)")
        if config.num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {config.num_classes}")
        self.config = config
        self.inputs = InputStack(config.inputs, glove_vectors)
        conditional = config.num_classes > 0
        self.classes = nn.Embedding(config.num_classes, config.class_dim) if conditional else None
        feeds = conditional and config.conditioning in ("input", "both")
        inits = conditional and config.conditioning in ("init", "both")
        size = config.inputs.output_size + (config.class_dim if feeds else 0)
        self.encoder = RNNEncoder(EncoderConfig.of(size, config.rnn))
        self.feeds_class = feeds
        rnn = config.rnn
        self.init = nn.Linear(config.class_dim, rnn.num_layers * rnn.state_size) if inits else None
        self.dropout = nn.Dropout(config.dropout)
        self.proj = nn.Linear(rnn.hidden_size, config.inputs.vocab_size)

    @classmethod
    def build(cls, config: LanguageModelConfig) -> LanguageModel:
        """A model with the installed GloVe table when it uses GloVe."""
        return cls(config, installed_glove(config.inputs))

    # ------------------------------------------------------------------------------------------

    def initial_state(self, class_ids: Tensor | None, batch: int) -> Tensor:
        """class_ids (B,) or None -> a<0> (and c<0>) of every layer (L, B, S)."""
        like = self.proj.weight
        if self.init is None or self.classes is None or class_ids is None:
            return self.encoder.initial_state(like, batch)
        rnn = self.config.rnn
        e = self.classes(class_ids)  # (B, class_dim)
        state = torch.tanh(self.init(e)).view(-1, rnn.num_layers, rnn.state_size)  # (B, L, S)
        return state.transpose(0, 1).contiguous()  # (L, B, S)

    def _x(self, word_vectors: Tensor, class_ids: Tensor | None) -> Tensor:
        """word_vectors (B, T, D), class_ids (B,) -> x<t> (B, T, D_in), e_c appended if fed."""
        x = self.inputs.from_vectors(word_vectors, None, None)  # type: ignore[arg-type]
        if self.feeds_class and self.classes is not None and class_ids is not None:
            e = self.classes(class_ids)  # (B, class_dim)
            x = torch.cat([x, e.unsqueeze(1).expand(-1, x.shape[1], -1)], dim=-1)
        return x

    def _check_classes(self, class_ids: Tensor | None) -> None:
        if (self.classes is None) != (class_ids is None):
            need = "needs" if self.classes is not None else "takes no"
            raise ValueError(f"this language model {need} class ids")

    def forward(
        self,
        token_ids: Tensor,
        lengths: Tensor,
        class_ids: Tensor | None = None,
        glove_ids: Tensor | None = None,
    ) -> Tensor:
        """x ids (B, T) (x<1> = START, x<t> = y<t-1>), lengths (B,), class_ids (B,) or None,
        GloVe ids (B, T) (GloVe models) -> logits (B, T, V); steps past a length are
        meaningless."""
        self._check_classes(class_ids)
        glove_ids = torch.zeros_like(token_ids) if glove_ids is None else glove_ids
        vectors = self.inputs.word_vectors(token_ids, glove_ids)
        x = self._x(vectors, class_ids)  # (B, T, D_in)
        state = self.initial_state(class_ids, token_ids.shape[0])  # (L, B, S)
        a, _ = self.encoder.encode(x, lengths, state)  # (B, T, H)
        return self.proj(self.dropout(a))  # (B, T, V)

    def step_from_vectors(
        self, word_vectors: Tensor, state: Tensor, class_ids: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """One step: vectors of x<t> (B, 1, D), state a<t-1> (L, B, S), class_ids (B,) or None
        -> (logits of ŷ<t> (B, V), state a<t> (L, B, S))."""
        x = self._x(word_vectors, class_ids)  # (B, 1, D_in)
        a, new_state = self.encoder.step(x, state)  # (B, 1, H), (L, B, S)
        return self.proj(self.dropout(a[:, -1])), new_state

    def word_vectors(self, word_ids: Tensor, glove_ids: Tensor) -> Tensor:
        """word_ids (B, T), glove_ids (B, T) -> word vectors (B, T, D)."""
        return self.inputs.word_vectors(word_ids, glove_ids)

    def word_table(self) -> np.ndarray:
        """The trainable word table (V, D) float32, as the bundle stores it."""
        return self.inputs.word_table()


def token_log_probs(logits: Tensor, targets: Tensor, lengths: Tensor) -> Tensor:
    """logits (B, T, V), targets y (B, T), lengths (B,) -> log P(y<t> | ...) (B, T), 0 past the
    length."""
    mask = torch.arange(targets.shape[1], device=targets.device)[None, :] < lengths[:, None]
    picked = F.log_softmax(logits.float(), dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return picked * mask


def sequence_loss(logits: Tensor, targets: Tensor, lengths: Tensor) -> Tensor:
    """The notes' loss: cross-entropy summed over the time steps of each sequence, averaged over
    the batch. logits (B, T, V), targets (B, T), lengths (B,) -> scalar."""
    return -token_log_probs(logits, targets, lengths).sum(1).mean()


# --------------------------------------------------------------------------------------------
# Graphs


def step_graph(model: LanguageModel, table: np.ndarray) -> Graph:
    """One time step as an ONNX graph: ``word_vectors`` (B, 1, D), ``state`` (L, B, S) and, for a
    conditional model, ``class_ids`` (B,) -> ``logits`` (B, V), ``state`` (L, B, S)."""
    conditional = model.classes is not None

    class _Step(nn.Module):
        def __init__(self, lm: LanguageModel) -> None:
            super().__init__()
            self.lm = lm

        def forward(self, word_vectors, state, class_ids=None):  # type: ignore[no-untyped-def]
            """x<t> vectors (B, 1, D), a<t-1> (L, B, S), c (B,) -> logits (B, V), a<t>."""
            return self.lm.step_from_vectors(word_vectors, state, class_ids)

    rnn = model.config.rnn

    def example(rng: np.random.Generator, variant: int) -> dict[str, np.ndarray]:
        b = 2 if variant == 0 else 5
        ids = rng.integers(0, table.shape[0], size=(b, 1))
        out = {
            "word_vectors": np.asarray(table[ids], dtype=np.float32),
            "state": rng.normal(0, 0.5, (rnn.num_layers, b, rnn.state_size)).astype(np.float32),
        }
        if conditional:
            out["class_ids"] = rng.integers(0, model.config.num_classes, size=b).astype(np.int64)
        return out

    inputs = ("word_vectors", "state", "class_ids") if conditional else ("word_vectors", "state")
    axes = {
        "word_vectors": {0: "batch"},
        "state": {1: "batch"},
        "logits": {0: "batch"},
        "state_out": {1: "batch"},
    }
    if conditional:
        axes["class_ids"] = {0: "batch"}
    return Graph(
        module=_Step(model).train(model.training),  # export restores this mode
        inputs=inputs,
        outputs=("logits", "state_out"),
        dynamic_axes=axes,
        example=example,
    )


def init_graph(model: LanguageModel) -> Graph:
    """A conditional model's initial state as an ONNX graph: ``class_ids`` (B,) -> ``state``
    (L, B, S) (zeros when the class is only fed as input)."""

    class _Init(nn.Module):
        def __init__(self, lm: LanguageModel) -> None:
            super().__init__()
            self.lm = lm

        def forward(self, class_ids):  # type: ignore[no-untyped-def]
            """c (B,) -> a<0> (L, B, S)."""
            state = self.lm.initial_state(class_ids, class_ids.shape[0])
            if self.lm.init is None:  # keep the input in the graph
                state = state + 0 * class_ids.to(state.dtype)[None, :, None]
            return state

    def example(rng: np.random.Generator, variant: int) -> dict[str, np.ndarray]:
        b = 2 if variant == 0 else 5
        return {"class_ids": rng.integers(0, model.config.num_classes, size=b).astype(np.int64)}

    return Graph(
        module=_Init(model).train(model.training),
        inputs=("class_ids",),
        outputs=("state",),
        dynamic_axes={"class_ids": {0: "batch"}, "state": {1: "batch"}},
        example=example,
    )
