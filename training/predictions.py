"""``ner train predict``: write the model's tags for ``data.predict_path`` as a CoNLL file."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
from lightning.pytorch.callbacks import BasePredictionWriter

from ner.data.conll import write_conll
from ner.data.schemes import convert


class ConllPredictionWriter(BasePredictionWriter):
    """Writes ``token predicted`` lines (one sentence per block) at the end of ``predict``.

    Args:
        output: File to write; default ``<log dir>/predictions.conll``.
        scheme: Tag scheme of the written labels: iob1, iob2 or bioes.
    """

    def __init__(
        self, output: str | None = None, scheme: Literal["iob1", "iob2", "bioes"] = "iob2"
    ) -> None:
        super().__init__(write_interval="epoch")
        self.output = output
        self.scheme = scheme
        self.written: Path | None = None

    def write_on_epoch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        predictions: Any,
        batch_indices: Any,
    ) -> None:
        if not trainer.is_global_zero:
            return
        split = trainer.datamodule.split("predict")  # type: ignore[attr-defined]
        tags: dict[int, list[str]] = {}
        for batch in predictions:
            for index, seq in batch:
                tags[index] = seq
        src = pl_module.tag_scheme  # type: ignore[attr-defined]
        blocks = []
        for i, tokens in enumerate(split.tokens):
            labels = convert(tags[i], src, self.scheme) if tags.get(i) else ["O"] * len(tokens)
            blocks.append([[tok, lab] for tok, lab in zip(tokens, labels, strict=True)])
        out = Path(self.output or Path(trainer.log_dir or ".") / "predictions.conll")
        out.parent.mkdir(parents=True, exist_ok=True)
        write_conll(out, blocks)
        self.written = out
