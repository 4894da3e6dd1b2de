"""Shared fixtures: one tiny training run (configs/tiny.yaml) that several tests inspect."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `training` and `ner` without relying on the invocation directory
    sys.path.insert(0, str(REPO))
FIXTURES = REPO / "tests" / "fixtures"
TINY_CONFIG = REPO / "configs" / "tiny.yaml"


def write_override(tmp: Path, *, name: str = "tiny") -> Path:
    """A second config that sends logs, checkpoints and the Arrow cache into ``tmp``."""
    loggers = [
        {
            "class_path": f"lightning.pytorch.loggers.{cls}",
            "init_args": {"save_dir": str(tmp / "runs"), "name": name},
        }
        for cls in ("CSVLogger", "TensorBoardLogger")
    ]
    override = {
        "trainer": {"logger": loggers},
        "data": {
            "train_path": str(FIXTURES / "tiny_train.conll"),
            "val_path": str(FIXTURES / "tiny_dev.conll"),
            "cache_dir": str(tmp / "cache"),
        },
    }
    path = tmp / "override.yaml"
    path.write_text(yaml.safe_dump(override), encoding="utf-8")
    return path


def _tiny_args(tmp: Path, *extra: str, subcommand: str = "fit") -> list[str]:
    return [subcommand, "-c", str(TINY_CONFIG), "-c", str(write_override(tmp)), *extra]


@pytest.fixture(scope="session")
def tiny_args() -> Callable[..., list[str]]:
    """``tiny_args(tmp, *extra)``: arguments for configs/tiny.yaml, outputs under ``tmp``."""
    return _tiny_args


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory):
    """A 2-epoch fit of configs/tiny.yaml, in process; returns (cli, run folder)."""
    from training.cli import run

    tmp = tmp_path_factory.mktemp("tiny_run")
    cli = run(_tiny_args(tmp))
    return cli, tmp


@pytest.fixture(scope="session")
def tiny_export(tiny_run, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``ner export`` of the tiny run's last.ckpt; returns the bundle directory."""
    from training.export import main as export_main

    _, tmp = tiny_run
    ckpt = tmp / "runs" / "tiny" / "checkpoints" / "last.ckpt"
    bundle = tmp_path_factory.mktemp("export") / "bundle"
    assert export_main(["--ckpt", str(ckpt), "--out", str(bundle), "--version", "0.0.1"]) == 0
    return bundle
