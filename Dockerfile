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
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# README.md* : the project metadata points at it; the glob keeps the build working before it exists.
COPY pyproject.toml README.md* ./
COPY ner ./ner
COPY serving ./serving
RUN pip install ".[serve]" \
 && python -c "import importlib.util as u, sys; sys.exit(u.find_spec('torch') is not None)" \
 && (pip uninstall -y pip setuptools wheel >/dev/null 2>&1 || true)

# ---- serve: the runtime image ------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS serve
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin ner
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=ner:ner models ./models
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    OMP_NUM_THREADS=1 \
    NER_HOST=0.0.0.0 \
    NER_PORT=8000
USER ner
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os,sys,urllib.request; u='http://127.0.0.1:%s/readyz' % os.environ.get('NER_PORT', '8000'); sys.exit(urllib.request.urlopen(u, timeout=4).status != 200)"]
# `ner serve --host 0.0.0.0 --port 8000` by default; NER_HOST / NER_PORT change it (exec keeps
# `ner` as PID 1, so `docker stop`'s SIGTERM reaches uvicorn and in-flight requests finish).
CMD ["sh", "-c", "exec ner serve --host \"$NER_HOST\" --port \"$NER_PORT\""]

# ---- train: Lightning + torch for `ner train` (GPU) ---------------------------------------------
FROM ${PYTHON_IMAGE} AS train
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1
RUN useradd --system --uid 10001 --user-group --create-home --shell /usr/sbin/nologin ner \
 && python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
COPY pyproject.toml README.md* ./
COPY ner ./ner
COPY serving ./serving
COPY training ./training
RUN pip install ".[train]"
COPY configs ./configs
RUN mkdir -p runs models && chown ner:ner runs models
USER ner
ENV NER_DATA_DIR=/data
CMD ["ner", "train", "fit", "-c", "configs/conll2003.yaml"]
