"""training.data: the Arrow cache keyed by sha256, vocabularies, bucketed batches, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ner.data.conll import ConllFormatError
from training.data import (
    BucketBatchSampler,
    NerDataModule,
    data_license,
    data_record,
    featurizer_from_state,
    file_sha256,
    load_split,
)

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures"
TRAIN, DEV = FIXTURES / "tiny_train.conll", FIXTURES / "tiny_dev.conll"


def _dm(tmp_path: Path, **kwargs) -> NerDataModule:
    args = {"train_path": str(TRAIN), "val_path": str(DEV), "cache_dir": str(tmp_path / "cache")}
    args.update(kwargs)
    return NerDataModule(use_glove=False, batch_size=4, **args)


def test_split_converts_tags_and_cache_follows_the_file_content(tmp_path: Path) -> None:
    path = tmp_path / "data.conll"
    path.write_text("John I-PER\nSmith I-PER\nsays O\n\nParis I-LOC\n", encoding="utf-8")
    ds = load_split(path, cache_dir=tmp_path / "c", input_scheme="iob1", tag_scheme="bioes")
    assert ds["tokens"][0] == ["John", "Smith", "says"]
    assert ds["tags"][0] == ["B-PER", "E-PER", "O"] and ds["tags"][1] == ["S-LOC"]
    again = load_split(path, cache_dir=tmp_path / "c", input_scheme="iob1", tag_scheme="bioes")
    assert again.cache_files == ds.cache_files  # unchanged file: read from the Arrow cache
    path.write_text("Rome I-LOC\n", encoding="utf-8")  # edited in place, same path
    edited = load_split(path, cache_dir=tmp_path / "c", input_scheme="iob1", tag_scheme="bioes")
    assert edited["tokens"][0] == ["Rome"] and len(edited) == 1
    assert edited.cache_files != ds.cache_files


def test_malformed_file_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.conll"
    path.write_text("John B-PER\nSmith\n", encoding="utf-8")
    with pytest.raises(ConllFormatError, match=r"bad\.conll:2:"):
        load_split(path, cache_dir=tmp_path / "c")
    with pytest.raises(FileNotFoundError, match="missing.conll"):
        load_split(tmp_path / "missing.conll", cache_dir=tmp_path / "c")


def test_vocab_labels_and_state_roundtrip(tmp_path: Path) -> None:
    dm = _dm(tmp_path)
    assert dm.labels[0] == "O" and len(dm.labels) == 17
    assert dm.vocab_size == len(dm.featurizer.words) > 2
    assert dm.num_chars > 2
    state = dm.state_dict()
    assert featurizer_from_state(state) == dm.featurizer
    dm.load_state_dict(state)  # the same data: accepted
    other = _dm(tmp_path, min_freq=2)
    with pytest.raises(ValueError, match="vocabularies or labels differ"):
        other.load_state_dict(state)
    assert _dm(tmp_path, use_chars=False).num_chars == 0


def test_dev_label_unknown_to_training_is_refused(tmp_path: Path) -> None:
    dev = tmp_path / "dev.conll"
    dev.write_text("Mars I-PLANET\n", encoding="utf-8")
    dm = _dm(tmp_path, val_path=str(dev))
    with pytest.raises(ValueError, match="PLANET"):
        dm.setup("fit")


def test_batches_are_padded_tensors(tmp_path: Path) -> None:
    dm = _dm(tmp_path)
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    assert len(batches) == len(dm.train_dataloader()) == 11  # 42 sentences / 4
    seen = torch.cat([b["index"] for b in batches]).sort().values
    assert seen.tolist() == list(range(42))
    b = batches[0]
    bsz, t = b["word_ids"].shape
    assert b["char_ids"].shape[:2] == (bsz, t) and b["tags"].shape == (bsz, t)
    assert int(b["lengths"].max()) == t
    pad = torch.arange(t)[None, :] >= b["lengths"][:, None]
    assert (b["word_ids"][pad] == 0).all() and (b["tags"][pad] == 0).all()


@settings(max_examples=100, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 60), min_size=1, max_size=200),
    batch_size=st.integers(1, 16),
    replicas=st.integers(1, 3),
    epoch=st.integers(0, 3),
)
def test_bucket_sampler_covers_everything(lengths, batch_size, replicas, epoch) -> None:
    samplers = [
        BucketBatchSampler(
            lengths, batch_size, shuffle=True, bucket_batches=3, num_replicas=replicas, rank=r
        )
        for r in range(replicas)
    ]
    for s in samplers:
        s.set_epoch(epoch)
    per_rank = [list(s) for s in samplers]
    assert len({len(b) for b in per_rank}) == 1  # every rank runs as many steps
    assert all(len(b) == len(s) for b, s in zip(per_rank, samplers, strict=True))
    flat = [i for batches in per_rank for batch in batches for i in batch]
    assert set(flat) == set(range(len(lengths)))
    assert all(1 <= len(batch) <= batch_size for batches in per_rank for batch in batches)
    if replicas == 1:
        assert sorted(flat) == list(range(len(lengths)))  # each sentence exactly once


def test_bucket_sampler_groups_lengths_and_reshuffles_per_epoch() -> None:
    lengths = list(range(1, 201))
    sampler = BucketBatchSampler(lengths, 10, shuffle=True, bucket_batches=5, seed=1)
    first = list(sampler)
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in first)
    assert spread / len(first) < 60  # random batches of 10 out of 1..200 spread ~160
    sampler.set_epoch(1)
    assert list(sampler) != first
    evaluation = list(BucketBatchSampler(lengths, 10))
    assert evaluation == list(BucketBatchSampler(lengths, 10))  # deterministic without shuffle


def test_data_record_has_no_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A card names a data file by name, path relative to the data folder, and sha256."""
    data = tmp_path / "data"
    (data / "conll2003").mkdir(parents=True)
    inside = data / "conll2003" / "train.txt"
    inside.write_text("John B-PER\n", encoding="utf-8")
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("Mary B-PER\n", encoding="utf-8")
    monkeypatch.setenv("NER_DATA_DIR", str(data))
    assert data_record(inside) == {
        "name": "train.txt",
        "path": "conll2003/train.txt",
        "sha256": file_sha256(inside),
    }
    assert data_record(outside)["path"] == "elsewhere.txt"  # not under the data folder
    assert data_record(outside, sha256="ab" * 32)["sha256"] == "ab" * 32


def test_data_license_from_the_readme(tmp_path: Path) -> None:
    (tmp_path / "train.txt").write_text("x O\n", encoding="utf-8")
    assert data_license(tmp_path / "train.txt") == "see the data's own license"
    (tmp_path / "README.md").write_text(
        "# Corpus\n\nSome words.\n\n## License\n\nResearch use only,\nno redistribution.\n\n"
        "More text.\n\n## Files\n\ntrain.txt\n",
        encoding="utf-8",
    )
    assert data_license(tmp_path / "train.txt") == "Research use only, no redistribution."


def test_state_records_files_and_license(tmp_path: Path) -> None:
    dm = _dm(tmp_path, license="CC BY 4.0")
    dm.setup("fit")
    state = dm.state_dict()
    assert state["license"] == "CC BY 4.0"
    assert state["files"]["train"] == {
        "name": TRAIN.name,
        "path": state["files"]["train"]["path"],
        "sha256": file_sha256(TRAIN),
    }
    assert not Path(state["files"]["train"]["path"]).is_absolute()
    assert state["files"]["val"]["name"] == DEV.name
