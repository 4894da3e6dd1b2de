"""The encoder-decoder: the model, the NumPy searches, the bundle round trip on both backends."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from ner.bundle import open_bundle
from ner.models.seq2seq import Seq2Seq
from ner.tasks import load
from ner.translate import (
    MAX_BEAM,
    Encoded,
    TranslationInputError,
    Translator,
    beam_search,
    greedy_search,
    training_arrays,
)
from tests.seq2seq_helpers import build_reverse_bundle, reverse_pairs, train_reverse

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def reverse_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Additive attention, BiGRU encoder, GRU decoder, trained on the reverse task."""
    return build_reverse_bundle(tmp_path_factory.mktemp("s2s") / "reverse")


@pytest.fixture(scope="module")
def onnx(reverse_bundle: Path) -> Translator:
    return load(reverse_bundle, "onnx")


@pytest.fixture(scope="module")
def torch_backend(reverse_bundle: Path) -> Translator:
    return load(reverse_bundle, "torch")


HELD_OUT = [x for x, _ in reverse_pairs(400, seed=12345)]


def test_reverse_task_learned(onnx: Translator) -> None:
    """A real check that the decoder and attention work: >= 99% exact on held-out strings."""
    out = onnx.translate(HELD_OUT)
    exact = np.mean([t.translation == x[::-1] for t, x in zip(out, HELD_OUT, strict=True)])
    assert exact >= 0.99
    assert all(t.finished and t.output_tokens[-1] == "</s>" for t in out)


def test_bundle_has_two_graphs(reverse_bundle: Path) -> None:
    bundle = open_bundle(reverse_bundle)
    assert bundle.task == "seq2seq"
    assert set(bundle.config["graphs"]) == {"encoder", "decoder_step"}
    assert bundle.meta["source"]["level"] == "char"


@pytest.mark.parametrize("beam", [1, 3])
def test_onnx_and_torch_agree(onnx: Translator, torch_backend: Translator, beam: int) -> None:
    texts = HELD_OUT[:40] + ["hgfedcbaabcd", "a"]
    a = onnx.translate(texts, beam_size=beam, n_best=beam)
    b = torch_backend.translate(texts, beam_size=beam, n_best=beam)
    for x, y in zip(a, b, strict=True):
        assert x.translation == y.translation
        assert x.score == pytest.approx(y.score, abs=1e-4)
        assert [t for t, _ in x.alternatives] == [t for t, _ in y.alternatives]
        np.testing.assert_allclose(x.attention, y.attention, atol=1e-3)


def test_attention_rows_label_the_heat_map(onnx: Translator) -> None:
    (t,) = onnx.translate(["abcd"])
    assert t.source_tokens == list("abcd")
    assert t.output_tokens == [*"dcba", "</s>"]
    att = np.asarray(t.attention)
    assert att.shape == (5, 4)
    np.testing.assert_allclose(att.sum(axis=1), 1.0, atol=1e-3)
    # reversing: output step i looks mostly at input step 3 - i
    assert list(att[:4].argmax(axis=1)) == [3, 2, 1, 0]


def test_score_is_the_log_probability(onnx: Translator) -> None:
    """The reported score equals the sum of the model's log-probabilities of the output."""
    (t,) = onnx.translate(["abcde"])
    encoded = onnx.encode([t.source_tokens])
    ids = [onnx.target.id(tok) for tok in t.output_tokens]
    prev, state, total = np.array([onnx.bos]), encoded.state, 0.0
    for token in ids:
        log_probs, state, _ = onnx._step(prev, state, encoded.memory, encoded.keys, encoded.lengths)
        total += float(log_probs[0, token])
        prev = np.array([token])
    assert t.score == pytest.approx(total, abs=1e-5)
    assert t.score < 0


def test_beam_of_one_equals_greedy(onnx: Translator) -> None:
    texts = HELD_OUT[:60]
    greedy = onnx.translate(texts)
    for text, g in zip(texts, greedy, strict=True):
        encoded = onnx.encode([list(text)])
        (b,) = beam_search(
            onnx._step, encoded, bos=2, eos=3, max_len=10, beam_size=1, banned=(0, 2)
        )
        assert "".join(onnx.target.itos[i] for i in b.ids) == g.translation
        assert b.score == pytest.approx(g.score, abs=1e-6)


@pytest.mark.parametrize("beam", [2, 5])
def test_beam_never_below_greedy(onnx: Translator, beam: int) -> None:
    texts = HELD_OUT[:60]
    greedy = onnx.translate(texts)
    beamed = onnx.translate(texts, beam_size=beam, n_best=beam)
    for g, b in zip(greedy, beamed, strict=True):
        assert b.score >= g.score - 1e-6
        scores = [b.score] + [s for _, s in b.alternatives]
        assert scores == sorted(scores, reverse=True)
        outputs = [b.translation] + [t for t, _ in b.alternatives]
        assert len(outputs) == beam and len(set(outputs)) == beam


def test_padding_invariance(onnx: Translator) -> None:
    """A text gives the same output and score alone and in a padded batch."""
    texts = ["ab", "hgfedcbaabcd", "cab", "abcdefg"]
    together = onnx.translate(texts)
    for text, t in zip(texts, together, strict=True):
        (alone,) = onnx.translate([text])
        assert alone.translation == t.translation
        assert alone.score == pytest.approx(t.score, abs=1e-5)
        np.testing.assert_allclose(alone.attention, t.attention, atol=1e-5)


def test_model_padding_invariance_and_attention_mask() -> None:
    model, source, target = train_reverse(epochs=0)
    arrays = training_arrays(
        [list("abcdef"), list("ab")], [list("fedcba"), list("ba")], source, target
    )
    t = {k: torch.from_numpy(v) for k, v in arrays.items()}
    with torch.no_grad():
        batch, alpha = model(t["source_ids"], t["lengths"], t["prev_ids"])
        alone, _ = model(t["source_ids"][1:, :2], t["lengths"][1:], t["prev_ids"][1:, :3])
    torch.testing.assert_close(batch[1, :3], alone[0], atol=1e-5, rtol=0)
    assert torch.all(alpha[1, :, 2:] == 0)  # padded input steps get exactly zero weight
    torch.testing.assert_close(alpha.sum(-1), torch.ones(2, 7))


def _markov_step(table: np.ndarray):  # type: ignore[no-untyped-def]
    """A fake decoder step whose log P(y<t> | y<t-1>) is a fixed table (state unused)."""

    def step(prev, state, memory, keys, lengths):  # type: ignore[no-untyped-def]
        return table[prev], state, np.zeros(memory.shape[:2], dtype=np.float32)

    return step


def _encoded_one() -> Encoded:
    return Encoded(
        np.zeros((1, 3, 2), np.float32),
        np.zeros((1, 3, 2), np.float32),
        np.zeros((1, 1, 2), np.float32),
        np.array([3]),
    )


def test_beam_search_is_exact_with_a_wide_beam() -> None:
    """Against brute force over every output of up to max_len tokens: with a beam wider than
    the number of live prefixes, beam search finds the most probable output."""
    rng = np.random.default_rng(0)
    v, max_len = 6, 4  # 0 pad, 1 unk, 2 bos, 3 eos, 4-5 tokens
    for _ in range(20):
        logits = rng.normal(scale=2.0, size=(v, v))
        table = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        step = _markov_step(table.astype(np.float64))
        best = -np.inf
        for n in range(max_len + 1):
            for seq in itertools.product([1, 4, 5], repeat=n):
                path = [2, *seq, 3] if n < max_len else [2, *seq]
                s = sum(table[a, b] for a, b in itertools.pairwise(path))
                best = max(best, s)
        (h,) = beam_search(
            step,
            _encoded_one(),
            bos=2,
            eos=3,
            max_len=max_len,
            beam_size=MAX_BEAM,
            banned=(0, 2),
        )
        assert h.score == pytest.approx(best)


def test_output_length_is_capped() -> None:
    """A model that never writes </s> still answers, at max_len tokens, marked unfinished."""
    table = np.log(np.full((6, 6), 1 / 6))
    table[:, 3] = -50.0
    step = _markov_step(table)
    (g,) = greedy_search(step, _encoded_one(), bos=2, eos=3, max_len=7, banned=(0, 2))
    assert len(g.ids) == 7 and not g.finished
    (b,) = beam_search(step, _encoded_one(), bos=2, eos=3, max_len=7, beam_size=3, banned=(0, 2))
    assert len(b.ids) == 7 and not b.finished


def test_length_penalty_prefers_longer_outputs() -> None:
    """Ranking by the mean log-probability per token can pick a longer output than the raw sum."""
    table = np.log(np.full((6, 6), 1e-9))
    table[2, 3], table[2, 4] = np.log(0.5), np.log(0.5)  # after <s>: stop or go on
    table[4, 5] = 0.0
    table[5, 3] = 0.0
    step = _markov_step(table)
    (raw,) = beam_search(step, _encoded_one(), bos=2, eos=3, max_len=5, beam_size=2, banned=(0, 2))
    assert raw.ids == ()
    (norm,) = beam_search(
        step,
        _encoded_one(),
        bos=2,
        eos=3,
        max_len=5,
        beam_size=2,
        length_penalty=1.0,
        banned=(0, 2),
    )
    assert norm.ids == (4, 5)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("abcdefghabcde", "at most 12"),
        ("x" * 10_000, "at most 12"),
        ("abz?", "'z', '?'"),
    ],
)
def test_bad_text(onnx: Translator, text: str, needle: str) -> None:
    with pytest.raises(TranslationInputError, match=needle.replace("?", r"\?")):
        onnx.translate([text])


@pytest.mark.parametrize(
    ("beam", "n_best", "needle"),
    [(0, 1, "beam_size"), (MAX_BEAM + 1, 1, "beam_size"), (2, 0, "n_best"), (2, 3, "exceed")],
)
def test_bad_search_settings(onnx: Translator, beam: int, n_best: int, needle: str) -> None:
    with pytest.raises(TranslationInputError, match=needle):
        onnx.translate(["abc"], beam_size=beam, n_best=n_best)


@pytest.mark.parametrize(
    ("attention", "cell", "layers"),
    [("none", "gru", 1), ("multiplicative", "lstm", 2), ("additive", "lstm", 1)],
)
def test_variants_export_and_agree(tmp_path: Path, attention: str, cell: str, layers: int) -> None:
    """Every attention kind and cell exports; both backends give the same beam output."""
    path = build_reverse_bundle(
        tmp_path / "b", attention=attention, cell=cell, num_layers=layers, epochs=1
    )
    a, b = load(path, "onnx"), load(path, "torch")
    for text in ["abc", "hgfedcba", "a"]:
        (x,), (y,) = a.translate([text], beam_size=3), b.translate([text], beam_size=3)
        assert x.translation == y.translation
        assert x.score == pytest.approx(y.score, abs=1e-4)
        assert (x.attention is None) == (attention == "none")


def test_config_checks() -> None:
    from dataclasses import replace

    model, _, _ = train_reverse(epochs=0)
    config = model.config
    with pytest.raises(ValueError, match="bidirectional"):
        Seq2Seq(replace(config, decoder=replace(config.decoder, bidirectional=True)))
    with pytest.raises(ValueError, match="one token stream"):
        Seq2Seq(replace(config, inputs=replace(config.inputs, casing_dim=4)))


# ---------------------------------------------------------------------------- ner translate


def test_cli_translate(
    reverse_bundle: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    import json

    from ner.cli import main

    assert (
        main(
            [
                "translate",
                "--model",
                str(reverse_bundle),
                "abcd",
                "--beam-size",
                "3",
                "--n-best",
                "2",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["translation"] == "dcba" and len(out["alternatives"]) == 1
    assert len(out["attention"]) == 5
    monkeypatch.setattr("sys.stdin", io.StringIO("ab\nhgf\n"))
    assert main(["translate", "--model", str(reverse_bundle), "--no-attention"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [x["translation"] for x in lines] == ["ba", "fgh"]
    assert all("attention" not in x for x in lines)


@pytest.mark.parametrize(
    ("args", "stdin", "needle"),
    [
        (["abz"], "", "never seen: 'z'"),
        (["abc", "--beam-size", "0"], "", "beam_size must be 1..16"),
        (["abc", "--beam-size", "2", "--n-best", "3"], "", "cannot exceed"),
        ([], "abc\n\nab\n", "stdin line 2: text is empty"),
    ],
)
def test_cli_translate_errors_are_one_line(
    reverse_bundle: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    stdin: str,
    needle: str,
) -> None:
    import io

    from ner.cli import main

    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    assert main(["translate", "--model", str(reverse_bundle), *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert err.startswith("ner: error: ") and needle in err and "\n" not in err


def test_cli_translate_on_onnx_never_imports_torch(reverse_bundle: Path) -> None:
    import json
    import subprocess
    import sys

    script = (
        "import contextlib, io, json, sys\n"
        "from ner.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    main(['translate', '--model', sys.argv[1], '--beam-size', '2', 'abc'])\n"
        "print(json.dumps([json.loads(out.getvalue())['translation'],"
        " 'torch' in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(reverse_bundle)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == ["cba", False]
