"""Every task's model config, as a frozen dataclass (no torch: a bundle's config is parsed with
these on the ONNX path too). Shared parts (input stack, RNN) are nested configs from
``ner.nn.config``; sizes that come from the data default to 0 and are filled in by training."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ner.nn.config import InputConfig, RNNConfig
from ner.tasks.config import from_dict


@dataclass(frozen=True)
class TaggerConfig:
    """Everything that defines a tagger's shape. ``num_tags`` comes from the data.

    Attributes:
        num_tags: Number of tags K (filled in from the data).
        inputs: The input stack (word, character and casing features).
        rnn: The recurrent encoder.
        dropout: Dropout before the output layer.
        head: Output layer: crf (linear-chain CRF) or softmax (per-token).
    """

    num_tags: int = 0
    inputs: InputConfig = field(default_factory=InputConfig)
    rnn: RNNConfig = field(default_factory=RNNConfig)
    dropout: float = 0.5
    head: Literal["crf", "softmax"] = "crf"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaggerConfig:
        return from_dict(cls, data)

    @classmethod
    def from_legacy(cls, flat: dict[str, Any]) -> TaggerConfig:
        """The flat ``tagger`` dict of a format-1 bundle -> the nested config."""
        flat = dict(flat)
        dropout = flat.pop("dropout", 0.5)  # the output dropout; the input stack's is embed_dropout
        inputs = InputConfig(
            **{k: flat.pop(k) for k in list(flat) if k in InputConfig.__dataclass_fields__},
            dropout=flat.pop("embed_dropout", 0.5),
        )
        rnn_keys = ("cell", "hidden_size", "num_layers", "bidirectional")
        rnn = RNNConfig(**{k: flat.pop(k) for k in rnn_keys if k in flat}, dropout=dropout)
        return cls(inputs=inputs, rnn=rnn, dropout=dropout, **flat)


Pooling = Literal["last", "max", "mean", "attention"]


@dataclass(frozen=True)
class ClassifierConfig:
    """Everything that defines a many-to-one classifier's shape. ``num_classes`` comes from the
    data.

    Attributes:
        num_classes: Number of classes K (filled in from the data).
        inputs: The input stack (word, character and casing features).
        rnn: The recurrent encoder (a stacked BiLSTM/BiGRU).
        pooling: How the encoder's a<1>..a<Tx> become one sentence vector: last (the top
            layer's final state; for a BiRNN forward a<Tx> next to backward a<1>), max or mean
            over time, or attention (a learned weighted mean, Yang et al. 2016).
        attention_size: Width of the attention scorer's hidden layer (pooling: attention).
        dropout: Dropout on the sentence vector, before the output layer.
        members: Independent encoder + pooling + output heads over the shared input stack,
            each trained on its own loss; the model's logits are the mean of their
            log-probabilities (an ensemble inside one graph). 1 = a single classifier.
    """

    num_classes: int = 0
    inputs: InputConfig = field(default_factory=InputConfig)
    rnn: RNNConfig = field(default_factory=RNNConfig)
    pooling: Pooling = "max"
    attention_size: int = 64
    dropout: float = 0.5
    members: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClassifierConfig:
        return from_dict(cls, data)


Attention = Literal["none", "additive", "multiplicative"]


def _seq2seq_inputs() -> InputConfig:
    return InputConfig(
        word_input="learned", word_dim=32, char_encoder="none", casing_dim=0, dropout=0.1
    )


def _seq2seq_encoder() -> RNNConfig:
    return RNNConfig(cell="gru", hidden_size=64, num_layers=1, bidirectional=True)


def _seq2seq_decoder() -> RNNConfig:
    return RNNConfig(cell="gru", hidden_size=128, num_layers=1, bidirectional=False)


@dataclass(frozen=True)
class Seq2SeqConfig:
    """Everything that defines an encoder-decoder's shape (Tx != Ty). Vocabulary sizes come from
    the data.

    Attributes:
        target_vocab_size: Output vocabulary size, <pad>, <unk>, <s> and </s> included (filled
            in from the data).
        inputs: The input stack over the source tokens (characters for dates, words for
            French): word_input onehot or learned, char_encoder none, casing_dim 0.
        encoder: The stacked (bi)directional encoder RNN.
        decoder: The decoder RNN (unidirectional); it starts from the encoder's final states.
        target_dim: Size of the embedding of the previous output token y<t-1>.
        attention: none (the decoder sees the input only through its initial state), additive
            (Bahdanau et al. 2015) or multiplicative (Luong et al. 2015, "general" score).
        attention_size: Width of the additive scorer (multiplicative: ignored; the keys have the
            decoder's width).
        dropout: Dropout on the decoder output, before the output layer.
    """

    target_vocab_size: int = 0
    inputs: InputConfig = field(default_factory=_seq2seq_inputs)
    encoder: RNNConfig = field(default_factory=_seq2seq_encoder)
    decoder: RNNConfig = field(default_factory=_seq2seq_decoder)
    target_dim: int = 32
    attention: Attention = "additive"
    attention_size: int = 64
    dropout: float = 0.1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Seq2SeqConfig:
        return from_dict(cls, data)


Conditioning = Literal["init", "input", "both"]


def _lm_inputs() -> InputConfig:
    return InputConfig(word_input="learned", word_dim=32, char_encoder="none", casing_dim=0)


def _lm_rnn() -> RNNConfig:
    return RNNConfig(cell="lstm", hidden_size=128, num_layers=1, bidirectional=False)


@dataclass(frozen=True)
class LanguageModelConfig:
    """Everything that defines a language model's shape (tasks ``language_model`` and, with
    classes, ``conditional_lm``). Vocabulary and class counts come from the data.

    Attributes:
        inputs: The input stack over the tokens (characters or words; the vocabulary holds
            <pad>, <unk> and <eos>): word_input onehot, learned or glove, char_encoder none,
            casing_dim 0. ``inputs.vocab_size`` is also the size of the softmax.
        rnn: The recurrent stack; unidirectional (a<t> may only see y<1>..y<t-1>).
        dropout: Dropout on a<t> before the output layer.
        num_classes: 0 for a plain language model; otherwise the number of classes c the
            one-to-many model is conditioned on.
        class_dim: Size of the class embedding e_c.
        conditioning: How e_c enters: init (a<0> = tanh(W e_c + b), and c<0> for an LSTM),
            input (concatenated to x<t> at every step) or both.
    """

    inputs: InputConfig = field(default_factory=_lm_inputs)
    rnn: RNNConfig = field(default_factory=_lm_rnn)
    dropout: float = 0.2
    num_classes: int = 0
    class_dim: int = 16
    conditioning: Conditioning = "both"

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LanguageModelConfig:
        return from_dict(cls, data)
