#!/usr/bin/env bash
# Build the serving image, bring up the compose stack, wait until the api is healthy, tag the seed
# sentence on 127.0.0.1:8000, print the response, and take the stack down (also on failure).
#
#   scripts/compose_smoke.sh
#
# Environment:
#   MODELS_DIR    bundles to serve, mounted at /app/models (default: ./models). Must be readable
#                 by the image's unprivileged user (uid 10001): chmod -R a+rX it if in doubt.
#   DOCKER_LOCAL  path of the docker-local tool (default: ../shared/tools/docker-local).
#   USE_DOCKER_LOCAL=1|0  force the choice below.
#   WAIT_S        how long to wait for the healthcheck (default 180).
#
# Docker with networking runs docker-compose.yml as it is. On a machine where dockerd has no bridge
# network (docker-local: `../shared/tools/docker-local up`), the same file is rewritten by
# `docker-local compose` to host networking; the server then binds 127.0.0.1 only. Either way the
# only traffic this script sends goes to 127.0.0.1.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
PORT=8000
SEED="Harry Potter and Hermione Granger invented a new spell."
WAIT_S=${WAIT_S:-180}
DOCKER_LOCAL=${DOCKER_LOCAL:-$ROOT/../shared/tools/docker-local}
export MODELS_DIR=${MODELS_DIR:-$ROOT/models}
MODELS_DIR=$(cd "$MODELS_DIR" && pwd)

log() { printf '[compose_smoke] %s\n' "$*" >&2; }

if docker compose version >/dev/null 2>&1; then
  COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null; then
  COMPOSE=(docker-compose)
else
  log "neither 'docker compose' nor 'docker-compose' found (try: $DOCKER_LOCAL up)"
  exit 1
fi
docker info >/dev/null 2>&1 || { log "no Docker engine (try: $DOCKER_LOCAL up)"; exit 1; }

if [ -z "${USE_DOCKER_LOCAL:-}" ]; then
  # docker-local starts dockerd with --bridge=none: no bridge network, so no port publishing.
  if docker network inspect bridge >/dev/null 2>&1; then USE_DOCKER_LOCAL=0; else USE_DOCKER_LOCAL=1; fi
fi
if [ "$USE_DOCKER_LOCAL" = 1 ]; then
  FILE=$("$DOCKER_LOCAL" compose "$ROOT/docker-compose.yml")
  export NER_HOST=127.0.0.1 # host network: listen on loopback only
  log "docker-local: host networking via $FILE"
else
  FILE=$ROOT/docker-compose.yml
fi
dc() { "${COMPOSE[@]}" -f "$FILE" -p rnn-ner-smoke "$@"; }

if python3 -c 'import socket, sys; sys.exit(socket.socket().connect_ex(("127.0.0.1", int(sys.argv[1]))) != 0)' "$PORT"; then
  log "something already listens on 127.0.0.1:$PORT; stop it first"
  exit 1
fi

cleanup() {
  local rc=$?
  if [ "$rc" != 0 ]; then
    log "failed (exit $rc); api logs:"
    dc logs --no-color --tail=60 api >&2 || true
  fi
  log "taking the stack down"
  dc down --remove-orphans --timeout 40 >/dev/null 2>&1 || true
  exit "$rc"
}
trap cleanup EXIT INT TERM

log "models: $MODELS_DIR ($(find "$MODELS_DIR" -mindepth 2 -maxdepth 2 -name config.json | wc -l) bundle(s))"
log "building the image"
t0=$(date +%s)
dc build api
log "built in $(( $(date +%s) - t0 ))s; image rnn-ner:latest is $(docker image inspect rnn-ner:latest --format '{{.Size}}' | awk '{printf "%.0f MB", $1/1e6}')"

log "starting the stack"
dc up -d api
cid=$(dc ps -q api)

log "waiting for the healthcheck (GET /readyz, up to ${WAIT_S}s)"
t0=$(date +%s)
while :; do
  health=$(docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$cid")
  state=$(docker inspect --format '{{.State.Status}}' "$cid")
  [ "$health" = healthy ] && break
  if [ "$state" = exited ] || [ "$state" = dead ]; then log "container $state"; exit 1; fi
  if (( $(date +%s) - t0 > WAIT_S )); then log "not healthy after ${WAIT_S}s ($health)"; exit 1; fi
  sleep 2
done
log "healthy after $(( $(date +%s) - t0 ))s"

log "POST http://127.0.0.1:$PORT/v1/tag  {\"text\": \"$SEED\"}"
python3 - "$PORT" "$SEED" <<'PY'
import json, sys, urllib.request

port, seed = sys.argv[1], sys.argv[2]
req = urllib.request.Request(
    f"http://127.0.0.1:{port}/v1/tag",
    data=json.dumps({"text": seed}).encode(),
    headers={"Content-Type": "application/json"},
)
with urllib.request.urlopen(req, timeout=30) as r:
    body = json.load(r)
print(json.dumps(body, indent=2, ensure_ascii=False))
for e in body["entities"]:
    assert seed[e["start"] : e["end"]] == e["text"], e
print("entities:", [(e["text"], e["label"], e["start"], e["end"]) for e in body["entities"]])
with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
    page = r.read().decode()
assert r.status == 200 and "<textarea" in page, "demo page missing"
print("demo page: GET / -> 200,", len(page), "bytes")
PY
log "ok"
