"""Sampling and scoring speed of the shipped language models (ONNX step graph, NumPy loops).

    OMP_NUM_THREADS=1 .venv/bin/python bench/lm_speed.py models/dinos-char models/shakespeare-char

For each bundle: the median time of ``generate`` (n samples as one batch) and of ``score`` on
one text, over 5 runs after a warm-up, on one ONNX Runtime thread. Prints a Markdown table.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ner.tasks import load  # noqa: E402

TEXT = {
    "char": "Tyrannosaurus",
    "word": "a warm , funny and moving film about two brothers",
}


def median_ms(fn, *args, runs: int = 5, **kwargs) -> float:
    fn(*args, **kwargs)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(*args, **kwargs)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    print("| model | call | ms (median of 5) | tokens produced or scored |")
    print("| --- | --- | --- | --- |")
    for path in sys.argv[1:]:
        p = load(path, threads=1)
        cls = p.classes[0] if p.classes else None
        for n, length in ((1, 100), (64, 100)):
            tokens = p.generate_tokens(n, seed=0, max_length=length, class_=cls)
            made = sum(map(len, tokens))
            ms = median_ms(p.generate, n, seed=0, max_length=length, class_=cls)
            print(f"| {p.name} | generate n={n}, max_length={length} | {ms:.1f} | {made} |")
        text = TEXT[p.level]
        ms = median_ms(p.score, [text], class_=cls)
        print(f"| {p.name} | score {text!r} | {ms:.1f} | {len(p.tokenize(text)) + 1} |")


if __name__ == "__main__":
    main()
