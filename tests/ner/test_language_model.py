"""Language models: the NumPy loops around the exported step graph against the torch model,
sampling settings, bad requests, baselines and the round trip through a real bundle."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ner.bundle import BundleError
from ner.data import lm
from ner.generate import (
    MAX_LENGTH,
    MAX_SAMPLES,
    GenerationError,
    LanguageModelPredictor,
    next_token_probs,
)
from ner.models.language_model import LanguageModel, token_log_probs
from ner.tasks import load
from tests.lm_helpers import export_tiny_lm, train_tiny_lm

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def char_lm(tmp_path_factory):
    model, featurizer, tokenizer, sequences, _ = train_tiny_lm("char", steps=40)
    path = export_tiny_lm(model, featurizer, tokenizer, tmp_path_factory.mktemp("lm") / "char")
    return model, path, sequences


@pytest.fixture(scope="module")
def cond_lm(tmp_path_factory):
    model, featurizer, tokenizer, sequences, labels = train_tiny_lm(
        "word", conditioning="both", cell="gru", steps=40
    )
    path = export_tiny_lm(model, featurizer, tokenizer, tmp_path_factory.mktemp("lm") / "cond")
    return model, path, sequences, labels


def torch_log_prob(model: LanguageModel, predictor, tokens, class_id=None) -> float:
    """log P(tokens, <EOS>) from the torch model's teacher-forced pass over the whole sequence."""
    x, y = lm.encode(predictor.vocab, tokens)
    x_t, y_t = torch.tensor([x]), torch.tensor([y])
    lengths = torch.tensor([len(x)])
    c = None if class_id is None else torch.tensor([class_id])
    with torch.no_grad():
        return float(token_log_probs(model(x_t, lengths, c), y_t, lengths).sum())


# ------------------------------------------------------------------------------------------------
# Scoring


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_score_equals_the_torch_model(char_lm, backend):
    model, path, _ = char_lm
    predictor = load(path, backend)
    texts = ["tyrannosaurus", "a", "zzx", "velociraptorsaurus"]
    for text, score in zip(texts, predictor.score(texts), strict=True):
        want = torch_log_prob(model, predictor, list(text))
        assert score.log_prob == pytest.approx(want, abs=1e-4)
        assert score.log_prob < 0


@pytest.mark.parametrize("conditioning", ["init", "input", "both"])
def test_conditional_score_equals_the_torch_model(tmp_path, conditioning):
    model, featurizer, tokenizer, sequences, labels = train_tiny_lm(
        "word", conditioning=conditioning, steps=15
    )
    predictor = load(export_tiny_lm(model, featurizer, tokenizer, tmp_path / "m"))
    assert predictor.task == "conditional_lm"
    for tokens in sequences[::7]:
        for c in (0, 1):
            got = predictor.score_tokens([tokens], class_=c)[0].log_prob
            assert got == pytest.approx(torch_log_prob(model, predictor, tokens, c), abs=1e-4)
    # the class matters: the sentence's own class is more likely for most training sentences
    own = [
        predictor.score_tokens([t], class_=c)[0].log_prob
        - predictor.score_tokens([t], class_=1 - c)[0].log_prob
        for t, c in zip(sequences, labels, strict=True)
    ]
    assert np.mean(np.asarray(own) > 0) > 0.5


def test_glove_word_model_scores_equal_the_torch_model(tmp_path):
    from ner.data.glove import load_glove

    model, featurizer, tokenizer, sequences, _ = train_tiny_lm("word", word_input="glove", steps=10)
    predictor = load(export_tiny_lm(model, featurizer, tokenizer, tmp_path / "glove"))
    assert predictor.featurizer.use_glove
    glove = load_glove()
    for tokens in [sequences[0], ["a", "superb", "film"]]:  # "superb": GloVe only
        x, y = lm.encode(predictor.vocab, tokens)
        g = [0, *(glove.id(t) + 1 for t in tokens)][: len(x)]
        with torch.no_grad():
            logits = model(torch.tensor([x]), torch.tensor([len(x)]), None, torch.tensor([g]))
            want = float(token_log_probs(logits, torch.tensor([y]), torch.tensor([len(x)])).sum())
        got = predictor.score_tokens([tokens])[0].log_prob
        assert got == pytest.approx(want, abs=1e-4)


def test_token_scores_sum_to_the_total_and_end_with_eos(char_lm):
    _, path, _ = char_lm
    score = load(path).score(["stegosaurus"])[0]
    assert [t.text for t in score.tokens] == [*"stegosaurus", lm.EOS]
    assert sum(t.log_prob for t in score.tokens) == pytest.approx(score.log_prob, abs=1e-9)
    assert all(t.log_prob <= 0 for t in score.tokens)
    assert score.perplexity == pytest.approx(math.exp(-score.log_prob / 12))


def test_scoring_is_padding_invariant(char_lm, cond_lm):
    _, path, _ = char_lm
    predictor = load(path)
    texts = ["a", "tyrannosaurus", "spinosaurus", "rex", "pachycephalosaurus"]
    batch = predictor.score(texts)
    for text, together in zip(texts, batch, strict=True):
        alone = predictor.score([text])[0]
        assert together.log_prob == pytest.approx(alone.log_prob, abs=1e-5)
        assert len(together.tokens) == len(text) + 1
    _, path, sequences, _ = cond_lm
    predictor = load(path)
    batch = predictor.score_tokens(sequences[:6], class_="positive")
    for tokens, together in zip(sequences[:6], batch, strict=True):
        alone = predictor.score_tokens([tokens], class_="positive")[0]
        assert together.log_prob == pytest.approx(alone.log_prob, abs=1e-5)


def test_word_model_scores_unknown_words_as_unk(cond_lm):
    _, path, _, _ = cond_lm
    predictor = load(path)
    score = predictor.score(["A great XYZZY film!"], class_=1)[0]
    assert [t.text for t in score.tokens] == ["a", "great", "xyzzy", "film", "!", lm.EOS]
    assert np.isfinite(score.log_prob)


def test_training_text_is_more_likely_than_noise(char_lm):
    _, path, sequences = char_lm
    predictor = load(path)
    real = predictor.score(["".join(s) for s in sequences[:10]])
    rng = np.random.default_rng(0)
    letters = sorted({c for s in sequences for c in s})
    noise = predictor.score(["".join(rng.choice(letters, len(s))) for s in sequences[:10]])
    assert np.mean([r.log_prob - n.log_prob for r, n in zip(real, noise, strict=True)]) > 5


# ------------------------------------------------------------------------------------------------
# Sampling


def greedy_reference(model: LanguageModel, predictor, prefix: str, max_length: int) -> str:
    """Greedy decoding with the torch model: argmax over all but <pad>/<unk>, feed it back."""
    vocab = predictor.vocab
    ids = [lm.START, *vocab.encode(list(prefix))]
    out = []
    for _ in range(max_length):
        x = torch.tensor([ids])
        with torch.no_grad():
            logits = model(x, torch.tensor([len(ids)]))[0, -1].clone()
        logits[[0, 1]] = -math.inf
        nxt = int(logits.argmax())
        if nxt == lm.EOS_ID:
            break
        out.append(vocab.itos[nxt])
        ids.append(nxt)
    return prefix + "".join(out)


def test_top_k_one_is_greedy_and_low_temperature_approaches_it(char_lm):
    model, path, _ = char_lm
    predictor = load(path)
    for prefix in ("", "ty", "br"):
        want = greedy_reference(model, predictor, prefix, 20)
        got = predictor.generate(3, top_k=1, prefix=prefix, seed=1, max_length=20)
        assert got == [want] * 3
        cold = predictor.generate(3, temperature=1e-4, prefix=prefix, seed=2, max_length=20)
        assert cold == [want] * 3


def test_sampling_is_reproducible_with_a_seed(char_lm):
    _, path, _ = char_lm
    onnx, torch_backend = load(path), load(path, "torch")
    a = onnx.generate(16, seed=7, temperature=1.2)
    assert a == onnx.generate(16, seed=7, temperature=1.2)
    assert a == torch_backend.generate(16, seed=7, temperature=1.2)
    assert a != onnx.generate(16, seed=8, temperature=1.2)
    assert len(set(a)) > 4  # a batch of samples, not one sample repeated


def test_samples_stop_at_eos_or_max_length_and_keep_the_prefix(char_lm):
    _, path, _ = char_lm
    predictor = load(path)
    samples = predictor.generate_tokens(32, prefix="sau", seed=0, max_length=5, temperature=2.0)
    assert all(s[:3] == ["s", "a", "u"] and 3 <= len(s) <= 8 for s in samples)
    assert all(lm.EOS not in s and "<pad>" not in s for s in samples)
    long = predictor.generate_tokens(16, seed=0, max_length=MAX_LENGTH)
    assert all(len(s) < MAX_LENGTH for s in long)  # names end


def test_unk_is_sampled_only_when_allowed(tmp_path):
    model, featurizer, tokenizer, _, _ = train_tiny_lm("char", steps=5)
    with torch.no_grad():
        model.proj.bias[1] += 30.0  # <unk> becomes by far the most likely token
    predictor = load(export_tiny_lm(model, featurizer, tokenizer, tmp_path / "m"))
    samples = predictor.generate_tokens(8, seed=0, max_length=10)
    assert not any("<unk>" in s for s in samples)
    allowed = predictor.generate_tokens(8, seed=0, max_length=10, allow_unk=True)
    assert all(s and set(s) == {"<unk>"} for s in allowed)


def test_class_conditioned_samples(cond_lm):
    _, path, _, _ = cond_lm
    predictor = load(path)
    pos = predictor.generate(8, seed=0, class_="positive", temperature=0.5)
    assert pos == predictor.generate(8, seed=0, class_=1, temperature=0.5)
    assert pos != predictor.generate(8, seed=0, class_="negative", temperature=0.5)
    assert predictor.describe()["classes"] == ["negative", "positive"]


# ------------------------------------------------------------------------------------------------
# The sampling distribution


def test_next_token_probs_against_brute_force():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (4, 7))
    for temperature, top_k, top_p in itertools.product((0.5, 1.0, 3.0), (None, 1, 3, 7), (0.3, 1)):
        got = next_token_probs(
            logits, temperature=temperature, top_k=top_k, top_p=top_p, banned=[0]
        )
        for row, p in zip(logits, got, strict=True):
            z = row / temperature
            z[0] = -np.inf
            order = np.argsort(-z)
            keep = order[: top_k or 7]
            keep = keep[np.isfinite(z[keep])]
            q = np.exp(z[keep] - z[keep].max())
            q /= q.sum()
            mass, nucleus = 0.0, []
            for i, qi in zip(keep, q, strict=True):
                if mass >= top_p:
                    break
                nucleus.append(i)
                mass += qi
            want = np.zeros(7)
            want[nucleus] = np.exp(z[nucleus] - z[nucleus].max())
            want /= want.sum()
            np.testing.assert_allclose(p, want, atol=1e-12)


def test_draws_follow_the_distribution():
    from ner.generate import _draw

    p = np.tile([[0.0, 0.1, 0.6, 0.3]], (20000, 1))
    counts = np.bincount(_draw(p, np.random.default_rng(0).random(20000)), minlength=4) / 20000
    np.testing.assert_allclose(counts, p[0], atol=0.01)
    assert counts[0] == 0


# ------------------------------------------------------------------------------------------------
# Bad requests


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"n": 0}, "n"),
        ({"n": MAX_SAMPLES + 1}, "n"),
        ({"max_length": 0}, "max_length"),
        ({"max_length": MAX_LENGTH + 1}, "max_length"),
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": -1.0}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"top_k": 0}, "top_k"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"class_": "positive"}, "class"),
        ({"prefix": "ty7é"}, "prefix"),
        ({"prefix": "a" * (MAX_LENGTH + 1)}, "prefix"),
    ],
)
def test_bad_settings_are_refused(char_lm, kwargs, field):
    """By generate, and the same way by prepare_sample (a server request's check before it
    shares a batch)."""
    _, path, _ = char_lm
    predictor = load(path)
    with pytest.raises(GenerationError) as generated:
        predictor.generate(**kwargs)
    with pytest.raises(GenerationError) as prepared:
        predictor.prepare_sample(**kwargs)
    assert prepared.value.field == generated.value.field == field
    assert str(prepared.value) == str(generated.value)


def test_unseen_characters_are_named(char_lm):
    _, path, _ = char_lm
    predictor = load(path)
    with pytest.raises(GenerationError, match=r"never seen: '7', 'é'") as info:
        predictor.generate(prefix="ty7é")
    assert info.value.field == "prefix"
    with pytest.raises(GenerationError, match="never seen: '!'"):
        predictor.score(["rex!"])


def test_empty_text_and_classes_are_checked(char_lm, cond_lm):
    _, path, _ = char_lm
    with pytest.raises(GenerationError, match="nothing to score"):
        load(path).score([""])
    _, path, _, _ = cond_lm
    predictor = load(path)
    with pytest.raises(GenerationError, match="needs a class"):
        predictor.generate()
    for bad in ("neutral", 2, -1, True):
        with pytest.raises(GenerationError, match="class"):
            predictor.generate(class_=bad)
    with pytest.raises(GenerationError, match="nothing to score"):
        predictor.score(["   "], class_=0)


def test_bundle_of_another_task_is_refused(char_lm):
    _, path, _ = char_lm
    with pytest.raises(BundleError, match="not a 'conditional_lm'"):
        load(path, task="conditional_lm")
    assert isinstance(LanguageModelPredictor.from_path(path), LanguageModelPredictor)


def test_export_refuses_a_bundle_over_the_cap(tmp_path):
    from ner.generate import export_language_model

    model, featurizer, tokenizer, _, _ = train_tiny_lm("char", steps=1)
    with pytest.raises(BundleError, match="over the"):
        export_language_model(
            model, tmp_path / "m", featurizer=featurizer, tokenizer=tokenizer, max_length=5,
            max_bytes=10_000,
        )  # fmt: skip
    assert not (tmp_path / "m").exists()


# ------------------------------------------------------------------------------------------------
# Data and baselines


def test_vocab_starts_with_pad_unk_eos_and_sequences_end_with_eos():
    vocab = lm.lm_vocab([list("abca"), list("bd")])
    assert vocab.itos[:4] == ("<pad>", "<unk>", "<eos>", "a")
    x, y = lm.encode(vocab, list("abz"))
    assert x == [lm.START, vocab.id("a"), vocab.id("b"), 1]
    assert y == [vocab.id("a"), vocab.id("b"), 1, lm.EOS_ID]


def test_bigram_add_one_against_counting_by_hand():
    train = [[3, 4, 2], [3, 2]]
    nats, n = lm.bigram_add_one(train, [[4, 2]], vocab_size=5)
    # 4 outcomes (all but START): P(4 | START) = (0 + 1) / (2 + 4), P(2 | 4) = (1 + 1) / (1 + 4)
    assert n == 2
    assert nats == pytest.approx(-math.log(1 / 6) - math.log(2 / 5))


def test_unigram_add_one_against_counting_by_hand():
    nats, n = lm.unigram_add_one([[3, 3, 2]], [[3, 4]], vocab_size=5)
    assert n == 2
    assert nats == pytest.approx(-math.log(3 / 7) - math.log(1 / 7))


def test_holdout_split_is_disjoint_and_seeded():
    items = [f"n{i}" for i in range(100)]
    train, held = lm.split_holdout(items, 0.1, seed=0)
    assert len(held) == 10 and len(train) == 90 and not set(train) & set(held)
    assert lm.split_holdout(items, 0.1, seed=0) == (train, held)


def test_stream_windows_are_shifted_by_one():
    ids = np.arange(3, 50)
    x, y = lm.stream_windows(ids, 6, 4, np.random.default_rng(0))
    assert x.shape == y.shape == (4, 6)
    assert (x[:, 0] == lm.START).all() and (x[:, 1:] == y[:, :-1]).all()
    assert ((y[:, 1:] - y[:, :-1]) == 1).all()


# ------------------------------------------------------------------------------------------------
# ner score / ner generate


def test_cli_score_and_generate(char_lm, capsys):
    import json

    from ner.cli import main

    _, path, _ = char_lm
    assert main(["score", "--model", str(path), "rex"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["log_prob"] == pytest.approx(load(path).score(["rex"])[0].log_prob)
    args = ["generate", "--model", str(path), "-n", "4", "--seed", "5", "--prefix", "br"]
    assert main(args) == 0
    assert capsys.readouterr().out.splitlines() == load(path).generate(4, seed=5, prefix="br")
    assert main([*args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["seed"] == 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["generate", "--top-p", "0"], "top_p"),
        (["generate", "--temperature", "0"], "temperature"),
        (["generate", "--prefix", "t?"], "never seen: '?'"),
        (["generate", "--class", "positive"], "takes no class"),
        (["generate", "--seed", "-1"], "--seed"),
        (["score", ""], "nothing to score"),
    ],
)
def test_cli_errors_are_one_line(char_lm, capsys, args, message):
    from ner.cli import main

    _, path, _ = char_lm
    assert main([*args, "--model", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ner: error: ") and message in err and err.count("\n") == 1


# ------------------------------------------------------------------------------------------------
# The shipped bundles

SHIPPED = ["dinos-char", "shakespeare-char", "sst2-generator"]
MODELS = Path(__file__).resolve().parents[2] / "models"


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_bundle(name):
    path = MODELS / name
    if not (path / "config.json").is_file():
        pytest.skip(f"{path} is not in this checkout")
    assert sum(f.stat().st_size for f in path.iterdir()) <= 10 * 1000 * 1000
    onnx, torch_backend = load(path), load(path, "torch")
    cls = onnx.classes[-1] if onnx.classes else None
    text = "Tyrannosaurus" if name == "dinos-char" else "a warm and moving film"
    if name == "shakespeare-char":
        text = "ROMEO:\nBut soft, what light through yonder window breaks?"
    got = onnx.score([text], class_=cls)[0]
    assert got.log_prob == pytest.approx(
        torch_backend.score([text], class_=cls)[0].log_prob, abs=1e-4
    )
    assert got.perplexity < 60 if onnx.level == "char" else got.perplexity < 5000
    metrics = onnx.card["metrics"]
    assert metrics["eval_nats_per_token"] < metrics.get("baseline_nats_per_token", 1.5 + 1e-9)
    assert onnx.generate(3, seed=0, class_=cls) == torch_backend.generate(3, seed=0, class_=cls)
