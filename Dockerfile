# Two images from one file:
#   serve (default): CPU inference with ONNX Runtime, the [serve] extra only: no torch, no CUDA.
#   train          : the [train] extra (PyPI torch, which carries its own CUDA libraries) for
#                    `ner train` on an NVIDIA GPU; see the `train` service in docker-compose.yml.
#
#   docker build -t rnn-ner .                               # serving image
#   docker build --target train -t rnn-ner-train .          # training image
#   docker run --rm -p 8000:8000 rnn-ner                    # serves every bundle under /app/models
#
# Both run as an unprivileged user (uid 10001). Models are copied in from models/ and may be
# replaced by a volume mounted at /app/models.

ARG PYTHON_IMAGE=python:3.11-slim

# ---- build: a virtual environment with the project and the [serve] extra -------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, from pyproject.toml alone, so that a code change does not reinstall them.
# (README.md* : the metadata points at it; the glob keeps the build working before it exists.)
COPY pyproject.toml README.md* ./
RUN python -m venv /opt/venv \
 && touch README.md && mkdir -p ner serving \
 && pip install ".[serve]" && pip uninstall -y rnn-ner
COPY ner ./ner
COPY serving ./serving
# The GloVe word index is read from a cache (ner.data.glove) built here, where pyarrow reads the
# package's parquet index once; pyarrow (~170 MB) then leaves the image, the cache adds ~13 MB.
ENV NER_CACHE_DIR=/opt/venv/share/rnn-ner
# No torch (and no pyarrow) may reach this image; pip itself is not needed at run time.
RUN pip install --no-deps . \
 && python -c "from ner.data.glove import build_index_cache; print(build_index_cache())" \
 && pip uninstall -y pyarrow \
 && python -c "import importlib.util as u, sys; sys.exit(any(u.find_spec(m) for m in ('torch', 'pyarrow')))" \
 && python -c "from ner.data.glove import load_glove; assert load_glove().id('paris') >= 0" \
 && (pip uninstall -y pip setuptools wheel >/dev/null 2>&1 || true)

# ---- serve: the runtime image ------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS serve
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    OMP_NUM_THREADS=1 \
    NER_CACHE_DIR=/opt/venv/share/rnn-ner \
    NER_MODELS_DIR=/app/models \
    NER_HOST=0.0.0.0 \
    NER_PORT=8000
RUN groupadd --gid 10001 ner \
 && useradd --uid 10001 --gid ner --home-dir /app --no-create-home --shell /usr/sbin/nologin ner
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os,sys,urllib.request; u='http://127.0.0.1:%s/readyz' % os.environ['NER_PORT']; sys.exit(urllib.request.urlopen(u, timeout=4).status != 200)"]
# `ner serve --host 0.0.0.0 --port 8000` by default; NER_HOST / NER_PORT change it. `exec` makes
# `ner` PID 1, so `docker stop`'s SIGTERM reaches uvicorn and in-flight requests finish.
CMD ["sh", "-c", "exec ner serve --host \"$NER_HOST\" --port \"$NER_PORT\""]
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# The bundles (read-only for the server); a volume mounted at /app/models replaces them.
COPY models ./models
USER ner

# ---- train: Lightning + torch for `ner train` (GPU) ---------------------------------------------
FROM ${PYTHON_IMAGE} AS train
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1
RUN groupadd --gid 10001 ner \
 && useradd --uid 10001 --gid ner --create-home --shell /usr/sbin/nologin ner \
 && python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
COPY pyproject.toml README.md* ./
COPY ner ./ner
COPY serving ./serving
COPY training ./training
RUN touch README.md && pip install ".[train]"
COPY configs ./configs
RUN mkdir -p runs models && chown ner:ner runs models
USER ner
ENV NER_DATA_DIR=/data
CMD ["ner", "train", "fit", "-c", "configs/conll2003.yaml"]
