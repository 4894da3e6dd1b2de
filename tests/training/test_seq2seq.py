"""The seq2seq task in ``ner train``: a tiny fit on generated dates, export, load and translate;
the pairs DataModule splits by source sentence."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from training.seq2seq import Seq2SeqDataModule, corpus_bleu

REPO = Path(__file__).resolve().parents[2]


def _override(tmp: Path) -> Path:
    loggers = [
        {
            "class_path": f"lightning.pytorch.loggers.{cls}",
            "init_args": {"save_dir": str(tmp / "runs"), "name": "dates"},
        }
        for cls in ("CSVLogger", "TensorBoardLogger")
    ]
    override = {
        "trainer": {
            "logger": loggers,
            "max_epochs": 2,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "num_sanity_val_steps": 0,
        },
        "data": {"train_size": 600, "val_size": 100, "test_size": 50, "batch_size": 32},
    }
    path = tmp / "override.yaml"
    path.write_text(yaml.safe_dump(override), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def dates_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.cli import run

    tmp = tmp_path_factory.mktemp("dates")
    run(["fit", "-c", str(REPO / "configs" / "dates.yaml"), "-c", str(_override(tmp))])
    return tmp


def test_fit_records_exact_match_and_exports(dates_run: Path) -> None:
    from ner.tasks import load
    from training.export import best_checkpoint, export_checkpoint

    ckpt, score, _ = best_checkpoint(dates_run / "runs" / "dates" / "checkpoints")
    assert 0.0 <= score <= 1.0
    out = export_checkpoint(ckpt, dates_run / "bundle", name="dates-tiny", version="0.0.1")
    onnx, torch_backend = load(out, "onnx"), load(out, "torch")
    assert onnx.task == "seq2seq" and onnx.source.remove == ","
    assert onnx.card["metrics"]["dev"]["exact"] == pytest.approx(score)
    text = "Tuesday, March 7, 2023"
    (a,), (b,) = onnx.translate([text], beam_size=2), torch_backend.translate([text], beam_size=2)
    assert a.translation == b.translation
    assert a.score == pytest.approx(b.score, abs=1e-4)
    assert a.source_tokens == list("tuesday march 7 2023")


def test_dates_splits_differ_and_are_reproducible() -> None:
    a, b = Seq2SeqDataModule(train_size=50, val_size=20), Seq2SeqDataModule(train_size=50)
    assert a.split("train").sources == b.split("train").sources
    assert a.split("train").sources[:20] != a.split("val").sources
    assert a.max_output_len >= 11  # ten ISO characters and </s>
    with pytest.raises(ValueError, match="must differ"):
        Seq2SeqDataModule(val_seed=0)


def test_pairs_are_split_by_source_sentence(tmp_path: Path) -> None:
    lines = [f"Go {i}.\tVa {i} !\tCC-BY" for i in range(30)]
    lines += [f"Go {i}.\tMarche {i}.\tCC-BY" for i in range(30)]  # a second translation each
    path = tmp_path / "pairs.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = Seq2SeqDataModule(kind="pairs", path=str(path), dev_fraction=0.2, test_fraction=0.2)
    parts = {n: {tuple(s) for s in data.split(n).sources} for n in ("train", "val", "test")}
    assert not parts["train"] & parts["val"] and not parts["train"] & parts["test"]
    assert sum(len(p) for p in parts.values()) == 30
    test = data.split("test")
    assert all(len(refs) == 2 for refs in test.references)  # both translations are references
    assert data.state_dict()["source"]["level"] == "word"


def test_corpus_bleu_takes_a_variable_number_of_references() -> None:
    assert corpus_bleu(
        ["le chat est là", "bonjour"], [["le chat est là"], ["salut", "bonjour"]]
    ) == (pytest.approx(100.0))
    assert corpus_bleu(["un chien"], [["le chat est là"]]) == pytest.approx(0.0)
