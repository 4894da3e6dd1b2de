"""The `ner` command line: predict / tag / eval in subprocesses, errors, and delegation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from ner.cli import detect_scheme, main
from ner.data.conll import DocStart, Sentence, iter_conll
from ner.data.schemes import is_valid

REPO_ROOT = Path(__file__).resolve().parents[2]
DEV = REPO_ROOT / "tests" / "fixtures" / "tiny_dev.conll"


def ner(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m ner_cli ARGS` the way a user runs `ner ARGS`."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "ner_cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=120,
    )


def _assert_user_error(out: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ner: error: "), out.stderr
    assert "Traceback" not in out.stderr
    for fragment in fragments:
        assert fragment in lines[0]


# --------------------------------------------------------------------------------------------
# predict


@pytest.fixture(scope="module")
def predicted(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "pred.txt"
    result = ner("predict", "--model", str(tiny_bundle), "--input", str(DEV), "--output", str(out))
    assert result.returncode == 0, result.stderr
    return out


def test_predict_writes_conlleval_layout(predicted: Path) -> None:
    gold = list(iter_conll(DEV))
    got = list(iter_conll(predicted))
    assert [type(x) for x in got] == [type(x) for x in gold]  # -DOCSTART- kept, same sentences
    lines = predicted.read_text().splitlines()
    assert lines[0] == "-DOCSTART- O O" and lines[1] == ""
    for g, p in zip(gold, got, strict=True):
        if isinstance(g, DocStart):
            continue
        assert isinstance(p, Sentence) and p.tokens == g.tokens
    rows = [line.split() for line in lines if line and not line.startswith("-DOCSTART-")]
    assert all(len(r) == 3 for r in rows)
    gold_labels = [r[1] for r in rows]
    assert gold_labels == [lab for s in gold if isinstance(s, Sentence) for lab in s.labels or ()]


def test_predict_writes_the_gold_scheme(predicted: Path) -> None:
    """tiny_dev is IOB1, so the predictions are IOB1 too (an IOB2 B- would open every chunk)."""
    sentences = [s for s in iter_conll(predicted, label_col=-1) if isinstance(s, Sentence)]
    assert detect_scheme(s.labels for s in sentences) == "iob1"
    assert all(is_valid(list(s.labels), "iob1") for s in sentences)  # type: ignore[arg-type]
    assert any(lab != "O" for s in sentences for lab in s.labels or ())


def test_predict_torch_backend_gives_the_same_file(
    predicted: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    out = tmp_path / "torch.txt"
    result = ner(
        "predict",
        "--model",
        str(tiny_bundle),
        "--input",
        str(DEV),
        "--output",
        str(out),
        "--backend",
        "torch",
        "--batch-size",
        "3",
    )
    assert result.returncode == 0, result.stderr
    assert out.read_text() == predicted.read_text()


def test_predict_scheme_override(tiny_bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "bioes.txt"
    result = ner(
        "predict",
        "--model",
        str(tiny_bundle),
        "--input",
        str(DEV),
        "--output",
        str(out),
        "--scheme",
        "bioes",
    )
    assert result.returncode == 0, result.stderr
    preds = [
        line.split()[2] for line in out.read_text().splitlines() if line and "DOCSTART" not in line
    ]
    assert all(p == "O" or p[:2] in ("B-", "I-", "E-", "S-") for p in preds)


def test_predict_without_labels(tiny_bundle: Path, tmp_path: Path) -> None:
    src = tmp_path / "tokens.txt"
    src.write_text("-DOCSTART-\n\nHarry\nPotter\nsmiled\n\nZzyzxqq\n")
    out = tmp_path / "out.txt"
    result = ner("predict", "--model", str(tiny_bundle), "--input", str(src), "--output", str(out))
    assert result.returncode == 0, result.stderr
    lines = out.read_text().splitlines()
    assert lines[:2] == ["-DOCSTART- O", ""]
    rows = [line.split() for line in lines[2:] if line]
    assert [r[0] for r in rows] == ["Harry", "Potter", "smiled", "Zzyzxqq"]
    assert all(len(r) == 2 for r in rows)


@pytest.mark.parametrize("gold", ["all_o", "no_labels"])
def test_predict_auto_scheme_without_gold_entities_is_iob2(
    tiny_softmax_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], gold: str
) -> None:
    """Gold labels that do not tell the scheme give IOB2, not the model's BIOES."""
    sentences = [s for s in iter_conll(DEV) if isinstance(s, Sentence)]
    src = tmp_path / "gold.conll"
    suffix = " O" if gold == "all_o" else ""
    src.write_text("\n\n".join("\n".join(t + suffix for t in s.tokens) for s in sentences) + "\n")
    out = tmp_path / "out.txt"
    args = ["predict", "--model", str(tiny_softmax_bundle), "--input", str(src)]
    assert main([*args, "--output", str(out)]) == 0
    assert "(iob2)" in capsys.readouterr().err
    got = [s for s in iter_conll(out, label_col=-1) if isinstance(s, Sentence)]
    assert [s.tokens for s in got] == [s.tokens for s in sentences]
    preds = [list(s.labels or ()) for s in got]
    assert all(p == "O" or p[:2] in ("B-", "I-") for seq in preds for p in seq)
    assert all(is_valid(seq, "iob2") for seq in preds)  # type: ignore[arg-type]
    # The same file in the model's scheme, on request, may use E-/S- tags: the flag still wins.
    assert main([*args, "--output", str(out), "--scheme", "bioes"]) == 0
    assert "(bioes)" in capsys.readouterr().err


def test_predict_malformed_input_names_file_and_line(tiny_bundle: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.conll"
    bad.write_text("Harry B-PER\nPotter I-PER\n\nLondon NNP B-LOC\nis\n")
    out = tmp_path / "out.txt"
    result = ner("predict", "--model", str(tiny_bundle), "--input", str(bad), "--output", str(out))
    _assert_user_error(result, f"{bad}:5:")
    assert not out.exists()


def test_predict_missing_input_and_bad_bundle(tiny_bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    result = ner(
        "predict", "--model", str(tiny_bundle), "--input", "nope.conll", "--output", str(out)
    )
    _assert_user_error(result, "nope.conll")
    result = ner("predict", "--model", str(tmp_path), "--input", str(DEV), "--output", str(out))
    _assert_user_error(result, "config.json", "missing file")
    result = ner(
        "predict",
        "--model",
        str(tiny_bundle),
        "--input",
        str(DEV),
        "--output",
        str(tmp_path / "no" / "such" / "dir.txt"),
    )
    _assert_user_error(result, "does not exist")


def test_predict_does_not_import_torch(tiny_bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    code = (
        "import sys\n"
        "from ner.cli import main\n"
        f"rc = main(['predict', '--model', {str(tiny_bundle)!r}, '--input', {str(DEV)!r}, "
        f"'--output', {str(out)!r}])\n"
        "assert rc == 0\n"
        "bad = [m for m in ('torch', 'lightning', 'pytorch_lightning') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert out.exists()


# --------------------------------------------------------------------------------------------
# tag and eval


def test_tag_text_and_stdin(tiny_bundle: Path) -> None:
    result = ner("tag", "--model", str(tiny_bundle), "Harry Potter went to London. Then home.")
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.strip().splitlines()
    doc = json.loads(line)
    assert doc.keys() == {"tokens", "entities"}
    assert doc["tokens"][0] == {**doc["tokens"][0], "text": "Harry", "start": 0, "end": 5}

    result = ner("tag", "--model", str(tiny_bundle), stdin="Hermione Granger\n\nZzyzxqq\n")
    assert result.returncode == 0, result.stderr
    docs = [json.loads(x) for x in result.stdout.splitlines()]
    assert len(docs) == 3
    assert docs[1] == {"tokens": [], "entities": []}
    assert [t["text"] for t in docs[2]["tokens"]] == ["Zzyzxqq"]


def test_eval_prints_and_writes_json(tiny_bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "scores.json"
    result = ner("eval", "--model", str(tiny_bundle), "--data", str(DEV), "--json", str(out))
    assert result.returncode == 0, result.stderr
    assert "micro" in result.stdout and "token accuracy" in result.stdout
    scores = json.loads(out.read_text())
    assert scores["scheme"] == "iob1"
    assert {"precision", "recall", "f1"} <= set(scores["micro"])
    assert 0.0 <= scores["token_accuracy"] <= 1.0
    assert scores["per_type"]


def test_eval_writes_json_by_default(
    tiny_bundle: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without --json the scores go to <model dir>.<data stem>.eval.json in the cwd (atomic)."""
    monkeypatch.chdir(tmp_path)
    assert main(["eval", "--model", str(tiny_bundle), "--data", str(DEV)]) == 0
    expected = f"{tiny_bundle.name}.tiny_dev.eval.json"
    assert sorted(p.name for p in tmp_path.iterdir()) == [expected]  # no temp file left behind
    captured = capsys.readouterr()
    assert expected in captured.err and "micro" in captured.out
    scores = json.loads((tmp_path / expected).read_text())
    assert scores["data"] == str(DEV) and scores["sentences"] > 0
    assert {"precision", "recall", "f1", "support"} <= set(scores["micro"])


def test_eval_needs_labels(tiny_bundle: Path, tmp_path: Path) -> None:
    src = tmp_path / "tokens.txt"
    src.write_text("Harry\nPotter\n")
    result = ner("eval", "--model", str(tiny_bundle), "--data", str(src))
    _assert_user_error(result, "no label column")


# --------------------------------------------------------------------------------------------
# In-process: scheme detection, defaults and delegation


@pytest.mark.parametrize(
    ("labels", "scheme"),
    [
        ([["I-PER", "I-PER", "O"]], "iob1"),
        ([["B-PER", "I-PER", "O", "B-LOC"]], "iob2"),
        ([["O", "I-PER"], ["B-PER"]], "iob1"),
        ([["S-PER", "O", "B-LOC", "E-LOC"]], "bioes"),
        ([["I-PER", "B-PER"]], "iob1"),
        ([["O", "O"]], None),
        ([], None),
        ([["0", "1", "1"]], "binary"),
    ],
)
def test_detect_scheme(labels: list[list[str]], scheme: str | None) -> None:
    assert detect_scheme(labels) == scheme


@pytest.mark.parametrize("command", ["train", "serve", "export"])
def test_delegation_passes_argv_untouched(command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The entry point ``ner_cli`` hands train/serve/export to their layer, argv as it came."""
    from ner_cli import main as entry_main

    seen: list[list[str]] = []
    module = {"train": "training.cli", "serve": "serving.cli", "export": "training.export"}[command]
    fake = types.ModuleType(module)
    fake.main = lambda argv: seen.append(list(argv)) or 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module, fake)
    argv_before = list(sys.argv)
    assert entry_main([command, "fit", "-c", "configs/x.yaml", "--help"]) == 0
    assert seen == [["fit", "-c", "configs/x.yaml", "--help"]]
    assert sys.argv == argv_before


@pytest.mark.parametrize("command", ["train", "serve", "export"])
def test_library_cli_does_not_run_the_layers(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``ner.cli`` never reaches up into training or serving: those commands are not its own."""
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_no_command_and_missing_default_model(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert main([]) == 2
    import ner.cli

    monkeypatch.setattr(ner.cli, "DEFAULT_MODEL", tmp_path / "missing")
    assert main(["tag", "x"]) == 2
    assert "no --model given" in capsys.readouterr().err


def test_eval_report_in_process(
    tiny_bundle: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The eval wiring against the documented EntityReport fields (micro, per_type, accuracy)."""
    seen = {}

    def entity_scores(gold, pred, scheme="iob2"):  # type: ignore[no-untyped-def]
        seen.update(gold=gold, pred=pred, scheme=scheme)
        prf = types.SimpleNamespace(precision=0.5, recall=0.25, f1=1 / 3, support=4)
        return types.SimpleNamespace(micro=prf, per_type={"PER": prf}, token_accuracy=0.9)

    fake = types.ModuleType("ner.metrics")
    fake.entity_scores = entity_scores  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ner.metrics", fake)
    out = tmp_path / "scores.json"
    assert main(["eval", "--model", str(tiny_bundle), "--data", str(DEV), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "token accuracy: 90.00%" in text and "PER" in text and "micro" in text
    scores = json.loads(out.read_text())
    assert scores["micro"] == {"precision": 0.5, "recall": 0.25, "f1": 1 / 3, "support": 4}
    assert (
        seen["scheme"] == "iob1" and len(seen["gold"]) == len(seen["pred"]) == scores["sentences"]
    )
    assert all(len(g) == len(p) for g, p in zip(seen["gold"], seen["pred"], strict=True))


# --------------------------------------------------------------------------------------------
# Clear errors instead of silent damage (issue 16, item 9)


def ner_bytes(*args: str, stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    """`ner ARGS` with raw bytes on stdin."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "ner_cli", *args],
        input=stdin,
        capture_output=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=120,
    )


def test_tag_refuses_invalid_utf8_on_stdin(tiny_bundle: Path) -> None:
    out = ner_bytes("tag", "--model", str(tiny_bundle), stdin=b"Paris is nice\nParis \xff ok\n")
    assert out.returncode == 2, out.stderr
    stderr = out.stderr.decode()
    assert stderr.startswith("ner: error: stdin line 2 is not valid UTF-8 (byte 0xff"), stderr
    assert "\ufffd" not in out.stdout.decode() and "Traceback" not in stderr


def test_predict_refuses_to_overwrite_its_input(tiny_bundle: Path, tmp_path: Path) -> None:
    gold = tmp_path / "gold.conll"
    gold.write_bytes(DEV.read_bytes())
    same = tmp_path / "sub" / ".." / "gold.conll"
    (tmp_path / "sub").mkdir()
    out = ner("predict", "--model", str(tiny_bundle), "--input", str(gold), "--output", str(same))
    _assert_user_error(out, "is the --input file")
    assert gold.read_bytes() == DEV.read_bytes()  # the gold file is untouched


def test_unwritable_output_names_the_path_given(tiny_bundle: Path) -> None:
    target = "/proc/ner-out.conll"  # no file can be created there, even by root
    out = ner("predict", "--model", str(tiny_bundle), "--input", str(DEV), "--output", target)
    _assert_user_error(out, f"{target}: cannot write")
    assert ".tmp" not in out.stderr
