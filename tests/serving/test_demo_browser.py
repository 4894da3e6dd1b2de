"""The web demo at ``GET /`` in real headless Chromium: Debian's ``chromium``, driven by playwright.

Two kinds of test:

- against a real ``ner serve`` (uvicorn in a subprocess, a real bundle): type text with an emoji
  before the entities, press Tag, and check that every highlighted span shows exactly the entity
  text the API returned. The shipped model is used when present (and then the screenshot goes to
  ``docs/demo.png`` for the README); otherwise the tiny bundle from ``tests/helpers.py``. The
  shipped sst2-en, dinos-char and dates-iso bundles are served too when present, for the Classify,
  Generate and Translate tabs (label and probability bars, seeded samples, the translation and its
  attention heat map, a 422 shown in the page); each of those tests skips without its bundle.
- against a canned API (playwright routes every request, nothing is served): entities after
  astral-plane characters and an entity whose text is HTML, so the code-point conversion and the
  textContent rendering are checked even when a tiny model predicts no entity at all; tabs whose
  task has no model say so, and a conditional language model's classes fill the class select.

Install the browser with ``apt-get update && apt-get install -y chromium``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
SHIPPED_MODEL = REPO / "models" / "conll2003-en"
# The other tasks' shipped bundles, served next to the tagger when present (each test that needs
# one skips without it): a classifier, a character language model and a date translator.
CLASSIFIER = REPO / "models" / "sst2-en"
GENERATOR = REPO / "models" / "dinos-char"
TRANSLATOR = REPO / "models" / "dates-iso"
TASK_MODELS = (CLASSIFIER, GENERATOR, TRANSLATOR)
SCREENSHOT = REPO / "docs" / "demo.png"
# A loopback origin for the canned-API tests: every request to it is answered by page.route,
# and if one ever escaped it would go to the discard port on this machine, nowhere else.
FAKE_ORIGIN = "http://127.0.0.1:9"

sync_api = pytest.importorskip("playwright.sync_api", reason="python playwright is not installed")
if not CHROMIUM.exists():
    pytest.skip(
        f"{CHROMIUM} is missing: apt-get update && apt-get install -y chromium",
        allow_module_level=True,
    )


@dataclass(frozen=True)
class Server:
    url: str
    shipped: bool  # True when serving models/conll2003-en
    extra: frozenset[str] = frozenset()  # names of the other shipped bundles served

    def need(self, model: Path) -> None:
        if model.name not in self.extra:
            pytest.skip(f"no shipped bundle at {model}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _model_dir(tmp: Path) -> tuple[Path, bool]:
    if (SHIPPED_MODEL / "config.json").is_file():
        return SHIPPED_MODEL, True
    try:
        from tests.helpers import build_tiny_bundle
    except ImportError as e:
        pytest.skip(
            f"no shipped model at {SHIPPED_MODEL} and no tests.helpers.build_tiny_bundle: {e}"
        )
    out = tmp / "tiny"
    return Path(build_tiny_bundle(out) or out), False


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"ner serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    pytest.fail(f"ner serve not ready after {timeout:.0f}s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``ner serve`` in a subprocess on a free loopback port, with a real bundle."""
    tmp = tmp_path_factory.mktemp("demo")
    model, shipped = _model_dir(tmp)
    port = _free_port()
    log = tmp / "server.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-c", "import sys; from ner_cli import main; sys.exit(main())"]
    cmd += ["serve", "--host", "127.0.0.1", "--port", str(port), "--model", str(model)]
    extra = [m for m in TASK_MODELS if (m / "config.json").is_file()]
    for m in extra:
        cmd += ["--model", str(m)]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc, log)
        yield Server(url=url, shipped=shipped, extra=frozenset(m.name for m in extra))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture()
def page(browser: sync_api.Browser) -> Iterator[sync_api.Page]:
    """A fresh page; a console error or an uncaught exception (a CSP violation too) fails it."""
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    context.close()
    assert not errors, f"browser errors: {errors}"


def _marks(pg: sync_api.Page) -> list[dict[str, object]]:
    return pg.eval_on_selector_all(
        "#highlighted mark.ent",
        """els => els.map(e => ({text: e.textContent, label: e.dataset.label,
                                 start: Number(e.dataset.start), end: Number(e.dataset.end)}))""",
    )


def _tag(pg: sync_api.Page, text: str, *, keyboard: bool = False) -> dict[str, object]:
    """Enter ``text`` (typed key by key with ``keyboard``), press Tag, return the API response."""
    if keyboard:
        pg.fill("#text", "")
        pg.locator("#text").press_sequentially(text)
        assert pg.input_value("#text") == text
    else:
        pg.fill("#text", text)
    with pg.expect_response(lambda r: r.url.endswith("/v1/tag")) as info:
        pg.click("#tag")
    pg.wait_for_selector("#highlighted[data-state=done]")
    return info.value.json()


# --- against the real server ----------------------------------------------------------------


def test_page_shows_model_and_secure_headers(server: Server, page: sync_api.Page) -> None:
    response = page.goto(server.url + "/")
    assert response is not None and response.status == 200
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    assert "script-src 'sha256-" in csp and "connect-src 'self'" in csp
    with urllib.request.urlopen(server.url + "/v1/models", timeout=5) as r:
        models = json.load(r)["models"]
    default = next((m for m in models if m["default"]), models[0])
    page.wait_for_selector("#model-name")
    assert page.text_content("#model-name") == default["name"]
    assert page.text_content("#model-version") == str(default["version"])
    with urllib.request.urlopen(server.url + "/openapi.json", timeout=5) as r:
        assert "/" not in json.load(r)["paths"], "the demo page must stay out of the schema"


def test_highlights_match_api_after_emoji(server: Server, page: sync_api.Page) -> None:
    text = "🙂 Harry Potter and Hermione Granger invented a new spell in London 🚀 with Ron."
    page.goto(server.url + "/")
    body = _tag(page, text, keyboard=True)

    marks = _marks(page)
    expected = sorted(body["entities"], key=lambda e: e["start"])
    # Both the shipped and the tiny model (trained on the seed sentence) find Harry Potter, so a
    # highlight sits after the emoji and a UTF-16 slip would show.
    assert any(e["start"] > 0 for e in expected), body
    assert [(m["text"], m["label"]) for m in marks] == [(e["text"], e["label"]) for e in expected]
    for m in marks:
        # Python (code-point) slicing of the submitted text gives the highlighted text.
        assert text[m["start"] : m["end"]] == m["text"]
    # The whole text is shown, unchanged, around the marks.
    assert page.text_content("#highlighted") == text

    rows = page.eval_on_selector_all(
        "#tokens tbody tr",
        "rows => rows.map(r => [r.children[1].textContent, r.dataset.label, r.dataset.isName])",
    )
    assert rows == [[t["text"], t["label"], str(t["is_name"])] for t in body["tokens"]]
    if server.shipped:
        assert ("Harry Potter", "PER") in {(e["text"], e["label"]) for e in expected}


def test_seed_sentence_screenshot(server: Server, page: sync_api.Page, tmp_path: Path) -> None:
    seed = "Harry Potter and Hermione Granger invented a new spell."
    page.goto(server.url + "/")
    body = _tag(page, seed)
    assert [m["text"] for m in _marks(page)] == [e["text"] for e in body["entities"]]
    if server.shipped:
        assert [(e["start"], e["end"]) for e in body["entities"]] == [(0, 12), (17, 33)]
    # Only the shipped model's page goes into the README; a tiny bundle's stays in tmp.
    target = SCREENSHOT if server.shipped else tmp_path / "demo.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.tmp")
    partial.write_bytes(page.screenshot(type="png", full_page=True))
    os.replace(partial, target)
    assert target.stat().st_size > 10_000


def test_classify_shows_label_and_probabilities(server: Server, page: sync_api.Page) -> None:
    server.need(CLASSIFIER)
    page.goto(server.url + "/")
    page.click("#tab-classify")
    assert page.is_hidden("#panel-tag") and page.is_visible("#panel-classify")
    page.fill("#classify-text", "a wonderful , moving film")
    with page.expect_response(lambda r: r.url.endswith("/v1/classify")) as info:
        page.click("#classify-run")
    page.wait_for_selector("#classify-label[data-state=done]")
    body = info.value.json()
    assert body["label"] == "positive"
    assert page.text_content("#classify-label") == "positive"
    rows = page.eval_on_selector_all(
        "#classify-probs tbody tr",
        "rows => rows.map(r => [r.dataset.label, Number(r.dataset.probability),"
        " r.querySelector('.bar i').style.width])",
    )
    assert sorted(r[0] for r in rows) == sorted(body["probabilities"])
    assert rows[0][0] == "positive"  # most probable first
    for label, p, width in rows:
        assert p == pytest.approx(body["probabilities"][label])
        assert float(width.rstrip("%")) == pytest.approx(100 * p, abs=0.1)


def test_generate_with_seed_shows_n_samples(server: Server, page: sync_api.Page) -> None:
    server.need(GENERATOR)
    page.goto(server.url + "/")
    page.click("#tab-generate")
    page.wait_for_selector("#generate-model option[value='dinos-char']", state="attached")
    page.select_option("#generate-model", "dinos-char")
    assert page.is_hidden("#generate-class-label")  # a plain language model takes no class
    page.fill("#generate-n", "4")
    page.fill("#generate-temperature", "0.8")
    page.fill("#generate-seed", "7")
    with page.expect_response(lambda r: r.url.endswith("/v1/generate")) as info:
        page.click("#generate-run")
    page.wait_for_selector("#generate-samples[data-state=done]")
    sent = json.loads(info.value.request.post_data or "{}")
    assert sent == {"model": "dinos-char", "n": 4, "temperature": 0.8, "seed": 7}
    body = info.value.json()
    shown = page.eval_on_selector_all("#generate-samples li", "els => els.map(e => e.textContent)")
    assert shown == body["samples"] and len(shown) == 4
    assert "seed 7" in page.text_content("#generate-status")


def test_translate_shows_date_and_attention_heat_map(server: Server, page: sync_api.Page) -> None:
    server.need(TRANSLATOR)
    page.goto(server.url + "/")
    page.click("#tab-translate")
    page.fill("#translate-text", "march 3 2021")
    with page.expect_response(lambda r: r.url.endswith("/v1/translate")) as info:
        page.click("#translate-run")
    page.wait_for_selector("#translate-attention[data-state=done]")
    body = info.value.json()
    assert body["translation"] == "2021-03-03"
    assert page.text_content("#translate-output") == "2021-03-03"
    assert f"{body['score']:.4f}" in page.text_content("#translate-score")
    heads = page.eval_on_selector_all(
        "#translate-attention thead th", "els => els.slice(1).map(e => e.textContent)"
    )
    assert heads == [("␣" if t == " " else t) for t in body["source_tokens"]]
    rows = page.eval_on_selector_all(
        "#translate-attention tbody tr",
        """rows => rows.map(r => ({token: r.dataset.token,
            weights: Array.from(r.querySelectorAll('td'), c => Number(c.dataset.weight)),
            colours: Array.from(r.querySelectorAll('td'), c => c.style.backgroundColor)}))""",
    )
    assert [r["token"] for r in rows] == body["output_tokens"]  # one row per output token
    assert len(rows) == len(body["attention"])
    for row, expected in zip(rows, body["attention"], strict=True):
        assert row["weights"] == pytest.approx(expected)
        assert all(c.startswith("rgba(47, 91, 211") for c in row["colours"])


def test_translate_api_error_is_shown(server: Server, browser: sync_api.Browser) -> None:
    server.need(TRANSLATOR)
    # Its own context: Chromium logs every 4xx fetch as a console error, which `page` refuses.
    context = browser.new_context()
    pg = context.new_page()
    pg.goto(server.url + "/")
    pg.click("#tab-translate")
    pg.fill("#translate-text", "march 3 2021 €")
    pg.click("#translate-run")
    pg.wait_for_selector("#translate-status.error")
    status = pg.text_content("#translate-status") or ""
    assert "422" in status and "never seen" in status, status
    assert pg.text_content("#translate-output") == ""
    context.close()


# --- against a canned API: the conversion and the escaping, model-independent ---------------


def _canned(pg: sync_api.Page, text: str, entities: list[dict[str, object]]) -> None:
    from serving.routes.demo import load_page

    demo = load_page()
    models = {"models": [{"name": "canned", "task": "ner", "version": "9", "default": True}]}
    result = {
        "model": {"name": "canned", "version": "9"},
        "tokens": [
            {
                "text": e["text"],
                "start": e["start"],
                "end": e["end"],
                "label": "B-" + e["label"],
                "is_name": 1,
                "score": e["score"],
            }
            for e in entities
        ],
        "entities": entities,
    }

    def handle(route: sync_api.Route) -> None:
        path = route.request.url.removeprefix(FAKE_ORIGIN)
        if path == "/":
            route.fulfill(
                status=200,
                body=demo.html,
                headers={"content-type": "text/html; charset=utf-8", **demo.headers},
            )
        elif path == "/v1/models":
            route.fulfill(status=200, json=models)
        elif path == "/v1/tag":
            assert json.loads(route.request.post_data or "{}")["text"] == text
            route.fulfill(status=200, json=result)
        else:
            route.fulfill(status=404, body="not found")

    pg.route(FAKE_ORIGIN + "/**", handle)


def _entity(text: str, sub: str, label: str, nth: int = 0) -> dict[str, object]:
    start = -1
    for _ in range(nth + 1):
        start = text.index(sub, start + 1)
    return {"text": sub, "label": label, "start": start, "end": start + len(sub), "score": 0.97}


def test_code_point_offsets_after_astral_characters(page: sync_api.Page) -> None:
    # Each emoji is 1 code point (Python offset) but 2 UTF-16 units (JS index); 👩‍🔬 is 3 code
    # points and 5 units, so naive JS slicing would be 1, 2, ... units off for each entity.
    text = "😀 Harry Potter 👩‍🔬 met Hermione in 𝔏ondon and Paris."
    entities = [
        _entity(text, "Harry Potter", "PER"),
        _entity(text, "Hermione", "PER"),
        _entity(text, "𝔏ondon", "LOC"),
        _entity(text, "Paris", "LOC"),
    ]
    assert len(text.encode("utf-16-le")) // 2 > len(text)  # the test means something
    _canned(page, text, entities)
    page.goto(FAKE_ORIGIN + "/")
    page.wait_for_selector("#model-name")
    _tag(page, text)
    marks = _marks(page)
    assert [(m["text"], m["label"]) for m in marks] == [(e["text"], e["label"]) for e in entities]
    assert page.text_content("#highlighted") == text
    badge = page.eval_on_selector(
        "#highlighted mark.ent", "e => getComputedStyle(e, '::after').content"
    )
    assert "PER 0.97" in badge


def test_entity_text_is_never_parsed_as_html(page: sync_api.Page) -> None:
    text = 'Say <img src=x onerror="document.title=1"> to <b>Bob</b> now.'
    entities = [
        _entity(text, '<img src=x onerror="document.title=1">', "MISC"),
        _entity(text, "<b>Bob</b>", "PER"),
    ]
    _canned(page, text, entities)
    page.goto(FAKE_ORIGIN + "/")
    _tag(page, text)
    assert [m["text"] for m in _marks(page)] == [e["text"] for e in entities]
    assert (
        page.eval_on_selector_all("#highlighted img, #highlighted b, #tokens img", "e => e.length")
        == 0
    )
    assert page.title() == "NER demo"


def test_api_error_is_shown(browser: sync_api.Browser) -> None:
    context = browser.new_context()
    pg = context.new_page()
    from serving.routes.demo import load_page

    demo = load_page()

    def handle(route: sync_api.Route) -> None:
        if route.request.url.endswith("/v1/tag"):
            route.fulfill(
                status=413, json={"detail": "text has 20001 characters; the limit is 20000"}
            )
        elif route.request.url.endswith("/v1/models"):
            route.fulfill(status=200, json={"models": []})
        else:
            route.fulfill(
                status=200,
                body=demo.html,
                headers={"content-type": "text/html; charset=utf-8", **demo.headers},
            )

    pg.route(FAKE_ORIGIN + "/**", handle)
    pg.goto(FAKE_ORIGIN + "/")
    pg.fill("#text", "x")
    pg.click("#tag")
    pg.wait_for_selector("#status.error")
    assert "413" in pg.text_content("#status") and "limit is 20000" in pg.text_content("#status")
    context.close()


def test_tasks_without_a_model_say_so(browser: sync_api.Browser) -> None:
    """Only a tagger and a conditional language model loaded (canned): the other panels say so,
    the class select lists the model's classes, and a 422 body is shown in the panel."""
    from serving.routes.demo import load_page

    demo = load_page()
    models = {
        "models": [
            {"name": "canned", "task": "ner", "version": "9", "default": True},
            {
                "name": "reviews",
                "task": "conditional_lm",
                "version": "2",
                "default": True,
                "classes": ["negative", "positive"],
            },
        ]
    }
    sent: list[dict[str, object]] = []

    def handle(route: sync_api.Route) -> None:
        path = route.request.url.removeprefix(FAKE_ORIGIN)
        if path == "/":
            route.fulfill(
                status=200,
                body=demo.html,
                headers={"content-type": "text/html; charset=utf-8", **demo.headers},
            )
        elif path == "/v1/models":
            route.fulfill(status=200, json=models)
        elif path == "/v1/generate":
            sent.append(json.loads(route.request.post_data or "{}"))
            error = {"type": "invalid_request", "message": "n: Input should be <= 64"}
            route.fulfill(status=422, json={"error": error})
        else:
            route.fulfill(status=404, body="not found")

    context = browser.new_context()
    pg = context.new_page()
    pg.route(FAKE_ORIGIN + "/**", handle)
    pg.goto(FAKE_ORIGIN + "/")
    pg.wait_for_selector("#model-name")
    assert pg.text_content("#tag-unavailable") == ""
    pg.click("#tab-classify")
    assert "No classification model is loaded" in (pg.text_content("#classify-unavailable") or "")
    pg.click("#tab-translate")
    assert "No translation model is loaded" in (pg.text_content("#translate-unavailable") or "")
    pg.click("#tab-generate")
    assert pg.text_content("#generate-unavailable") == ""
    assert pg.is_visible("#generate-class-label")
    options = pg.eval_on_selector_all("#generate-class option", "els => els.map(e => e.value)")
    assert options == ["negative", "positive"]
    pg.select_option("#generate-class", "positive")
    pg.fill("#generate-n", "65")
    pg.click("#generate-run")
    pg.wait_for_selector("#generate-status.error")
    status = pg.text_content("#generate-status") or ""
    assert "422" in status and "n: Input should be <= 64" in status, status
    assert sent == [{"model": "reviews", "n": 65, "temperature": 1, "class": "positive"}]
    context.close()
