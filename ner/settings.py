"""Where the library looks for data."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """The shared data folder: ``$NER_DATA_DIR``, else ``../shared/data`` beside the repository."""
    env = os.environ.get("NER_DATA_DIR")
    if env:
        return Path(env).expanduser()
    return REPO_ROOT.parent / "shared" / "data"
