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
        inputs = InputConfig(
            **{k: flat.pop(k) for k in list(flat) if k in InputConfig.__dataclass_fields__}
        )
        inputs = InputConfig(**{**asdict(inputs), "dropout": flat.pop("embed_dropout", 0.5)})
        dropout = flat.pop("dropout", 0.5)
        rnn_keys = ("cell", "hidden_size", "num_layers", "bidirectional")
        rnn = RNNConfig(**{k: flat.pop(k) for k in rnn_keys if k in flat}, dropout=dropout)
        return cls(inputs=inputs, rnn=rnn, dropout=dropout, **flat)


