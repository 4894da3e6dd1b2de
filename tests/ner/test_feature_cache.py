"""The featurizer's word cache stays small under adversarial input (unique long tokens)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, resource
from ner.data.vocab import Vocab, char_vocab
from ner.features import Featurizer

def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20

words = Vocab.build(["Harry", "Potter", "Paris"], casing="lower")
featurizer = Featurizer(words, char_vocab(["Harry", "Potter", "Paris"]))
featurizer.encode([["warm", "up"]])
before = rss_mib()
for i in range(0, 20_000, 64):  # 20,000 unique 10,000-character tokens, 64 per batch
    batch = [[f"{j:08d}" + "x" * 9_992] for j in range(i, min(i + 64, 20_000))]
    featurizer.encode(batch)
featurizer.encode([["Harry"] * 3])
print(json.dumps({"growth_mib": rss_mib() - before, "cached": len(featurizer._cache)}))
"""


def test_unique_long_tokens_do_not_grow_memory() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["growth_mib"] < 50, report  # was ~200 MiB: every token cached by its text
    assert report["cached"] <= 4, report  # short words are still cached
