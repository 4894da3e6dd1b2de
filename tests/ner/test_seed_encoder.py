"""The seed cells inside ner.nn.encoder: padding, stepping, ONNX export with dynamic axes, a
tagger trained with ``cell: seed_lstm`` against ``cell: lstm``, and a seed-cell bundle served."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from ner.nn.cells import SEED_CELLS
from ner.nn.encoder import EncoderConfig, RNNEncoder

torch.set_num_threads(1)

D, H = 5, 4


def encoder(cell: str, **kw) -> RNNEncoder:
    torch.manual_seed(0)
    return RNNEncoder(EncoderConfig(input_size=D, hidden_size=H, cell=cell, **kw)).eval()


@pytest.mark.parametrize("cell", SEED_CELLS)
def test_padding_never_leaks(cell):
    """A sentence gives the same output alone and inside a padded batch, both directions."""
    enc = encoder(cell, num_layers=2)
    x = torch.randn(3, 7, D)
    lengths = torch.tensor([7, 3, 5])
    with torch.no_grad():
        batch = enc(x, lengths)
        for i, n in enumerate(lengths.tolist()):
            alone = enc(x[i : i + 1, :n], lengths[i : i + 1])
            torch.testing.assert_close(batch[i, :n], alone[0], atol=1e-6, rtol=0)
        assert not batch[1, 3:].any()  # padded steps are zero


@pytest.mark.parametrize("cell", ["seed_lstm", "seed_gru", "seed_rnn_tanh"])
def test_step_continues_encode(cell):
    """step() from the state after k steps equals running the whole sequence (a language model)."""
    enc = encoder(cell, bidirectional=False, num_layers=2)
    x = torch.randn(2, 6, D)
    with torch.no_grad():
        whole, _ = enc.step(x)
        first, state = enc.step(x[:, :4])
        rest, _ = enc.step(x[:, 4:], state)
    assert state.shape == (2, 2, enc.config.state_size)
    torch.testing.assert_close(torch.cat([first, rest], dim=1), whole, atol=1e-6, rtol=0)


class _Encode(torch.nn.Module):
    def __init__(self, enc: RNNEncoder) -> None:
        super().__init__()
        self.enc = enc

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.enc(x, lengths)


@pytest.mark.parametrize("cell", SEED_CELLS)
def test_seed_encoder_exports_to_onnx_with_dynamic_time(cell, tmp_path):
    """The scripted loop becomes an ONNX Loop: a longer, bigger batch than the trace runs right."""
    ort = pytest.importorskip("onnxruntime")
    enc = encoder(cell)
    path = tmp_path / f"{cell}.onnx"
    example = (torch.randn(2, 3, D), torch.tensor([3, 2]))
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Encode(enc),
            example,
            str(path),
            input_names=["x", "lengths"],
            output_names=["a"],
            dynamic_axes={"x": {0: "B", 1: "T"}, "lengths": {0: "B"}, "a": {0: "B", 1: "T"}},
            opset_version=17,
            dynamo=False,
        )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.randn(4, 11, D)
    lengths = torch.tensor([11, 1, 6, 9])
    (got,) = session.run(None, {"x": x.numpy(), "lengths": lengths.numpy()})
    with torch.no_grad():
        want = enc(x, lengths).numpy()
    assert got.shape == (4, 11, 2 * H)
    np.testing.assert_allclose(got, want, atol=1e-5)


# ------------------------------------------------------------------ a tagger with a seed cell


def _fixture_data():
    from ner.data.conll import read_conll
    from ner.data.schemes import convert, label_names, spans_from_tags
    from ner.data.vocab import Vocab
    from ner.features import Featurizer
    from tests.helpers import TINY_DEV, TINY_TRAIN

    train, dev = read_conll(TINY_TRAIN), read_conll(TINY_DEV)
    tags = {id(s): convert(list(s.labels or ()), "iob1", "iob2") for s in train + dev}
    types = {span.label for s in train for span in spans_from_tags(tags[id(s)], "iob2")}
    labels = label_names(types, "iob2")
    words = Vocab.build((w for s in train for w in s.tokens), casing="lower")
    featurizer = Featurizer(words)
    index = {label: i for i, label in enumerate(labels)}

    def tensors(sentences):
        feats = featurizer.encode([list(s.tokens) for s in sentences])
        tag_ids = np.zeros(feats.word_ids.shape, dtype=np.int64)
        for i, s in enumerate(sentences):
            tag_ids[i, : len(s)] = [index.get(t, 0) for t in tags[id(s)]]
        arrays = (feats.word_ids, feats.glove_ids, feats.char_ids, feats.casing_ids, feats.lengths)
        return [torch.from_numpy(a) for a in arrays], torch.from_numpy(tag_ids)

    gold = [tags[id(s)] for s in dev]
    return labels, len(words), tensors(train), tensors(dev), gold


def _tagger(cell: str, seed: int, num_tags: int, vocab_size: int):
    from ner.models.config import TaggerConfig
    from ner.models.tagger import Tagger
    from ner.nn.config import InputConfig, RNNConfig

    torch.manual_seed(seed)
    inputs = InputConfig(
        vocab_size=vocab_size,
        word_input="learned",
        word_dim=16,
        char_encoder="none",
        casing_dim=4,
        dropout=0.0,
    )
    rnn = RNNConfig(cell=cell, hidden_size=16)  # type: ignore[arg-type]
    config = TaggerConfig(num_tags=num_tags, inputs=inputs, rnn=rnn, dropout=0.0, head="softmax")
    return Tagger(config)


def _train_and_score(model, data) -> tuple[float, float]:
    """(final training loss, dev entity F1) of a softmax tagger after 100 full-batch Adam steps."""
    from ner.metrics import entity_scores

    labels, _, (train_x, train_y), (dev_x, _), gold = data
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.02)
    model.train()
    for _ in range(100):
        optimizer.zero_grad()
        loss = model.loss(model(*train_x), train_y, train_x[-1])
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        best = model(*dev_x).argmax(-1).numpy()
    pred = [[labels[k] for k in best[i, : len(g)]] for i, g in enumerate(gold)]
    return float(loss.detach()), entity_scores(gold, pred, "iob2").micro.f1


def test_seed_lstm_tagger_trains_like_the_lstm_tagger():
    """From the same weights, seed_lstm and nn.LSTM follow the same training trajectory.

    nn.LSTM has two biases per gate (b_ih + b_hh = the notes' b), each trained, so Adam moves their
    sum twice as fast: fold b_hh into b_ih and freeze it to compare the same parametrisation.
    float64, because the two summation orders drift apart in float32 over 100 Adam steps.
    """
    from ner.nn.cells import from_torch

    data = _fixture_data()
    labels, vocab_size = data[0], data[1]
    fused = _tagger("lstm", 0, len(labels), vocab_size)
    seed = _tagger("seed_lstm", 0, len(labels), vocab_size)
    seed.load_state_dict(
        {k: v for k, v in fused.state_dict().items() if not k.startswith("encoder.")},
        strict=False,
    )
    for layers in ("forward_layers", "backward_layers"):
        pairs = zip(getattr(fused.encoder, layers), getattr(seed.encoder, layers), strict=True)
        for lstm, layer in pairs:
            with torch.no_grad():
                lstm.bias_ih_l0 += lstm.bias_hh_l0
                lstm.bias_hh_l0.zero_()
            lstm.bias_hh_l0.requires_grad_(False)
            layer.cell.load_state_dict(from_torch(lstm).state_dict())
    fused, seed = fused.double(), seed.double()
    loss_fused, f1_fused = _train_and_score(fused, data)
    loss_seed, f1_seed = _train_and_score(seed, data)
    assert loss_seed == pytest.approx(loss_fused, rel=1e-6)
    assert loss_seed < 0.05  # it did learn the training set
    assert f1_seed == f1_fused


@pytest.mark.parametrize("cell", ["seed_lstm", "seed_gru", "seed_lstm_peephole"])
def test_seed_cell_tagger_reaches_the_lstm_quality(cell):
    """Independent seeds: mean dev F1 of a seed cell within noise of nn.LSTM's (the fixture's dev
    set is 15 sentences, so the noise is large: two standard errors of the difference)."""
    data = _fixture_data()
    labels, vocab_size = data[0], data[1]
    seeds = range(5)
    seed_f1 = [_train_and_score(_tagger(cell, s, len(labels), vocab_size), data)[1] for s in seeds]
    lstm_f1 = [
        _train_and_score(_tagger("lstm", s, len(labels), vocab_size), data)[1] for s in seeds
    ]
    noise = 2 * np.sqrt((np.var(seed_f1, ddof=1) + np.var(lstm_f1, ddof=1)) / len(seeds))
    assert np.mean(lstm_f1) > 0.15  # the budget is enough to learn something
    assert abs(np.mean(seed_f1) - np.mean(lstm_f1)) <= noise + 0.02, (seed_f1, lstm_f1)


def test_seed_cell_bundle_exports_and_serves(tmp_path: Path):
    """A bundle whose encoder is the seed LSTM exports to ONNX and predicts like any other."""
    from ner.predict import Predictor
    from tests.helpers import build_tiny_bundle

    path = build_tiny_bundle(tmp_path / "seed", cell="seed_lstm", char_encoder="none", steps=5)
    sentences = [["Harry", "Potter", "visited", "Zzyzx", "in", "Scotland", "."], ["x"], []]
    onnx_docs = Predictor.from_path(path).predict(sentences)
    torch_docs = Predictor.from_path(path, backend="torch").predict(sentences)
    assert len(onnx_docs) == 3
    for onnx_doc, torch_doc in zip(onnx_docs, torch_docs, strict=True):
        got, want = onnx_doc.to_dict(), torch_doc.to_dict()
        assert got["entities"] == want["entities"]
        assert [t["label"] for t in got["tokens"]] == [t["label"] for t in want["tokens"]]
        pairs = zip(got["tokens"], want["tokens"], strict=True)
        assert all(abs(t["score"] - u["score"]) < 1e-4 for t, u in pairs)
