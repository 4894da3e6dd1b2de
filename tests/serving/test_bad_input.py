"""Every kind of bad request gets a 4xx with a message saying what was wrong, never a 500."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.serving.support import MODEL

JSON = {"content-type": "application/json"}
LIMITS = {"max_chars": 40, "max_tokens": 5, "max_documents": 3, "max_token_chars": 8}

# (id, raw body, status, error type, message fragment, limit name or None)
CASES: list[tuple[str, bytes, int, str, str, str | None]] = [
    ("malformed JSON", b'{"text": "a"', 400, "invalid_json", "line 1 column", None),
    ("trailing garbage", b'{"text": "a"} x', 400, "invalid_json", "Extra data", None),
    ("empty body", b"", 400, "invalid_json", "empty", None),
    ("invalid UTF-8", b'{"text": "caf\xe9"}', 400, "invalid_utf8", "byte 0xe9", None),
    ("UTF-8 surrogate bytes", b'{"text": "\xed\xa0\x80"}', 400, "invalid_utf8", "UTF-8", None),
    ("deep nesting", b"[" * 2000 + b"]" * 2000, 400, "invalid_json", "", None),
    ("huge integer", b'{"text": ' + b"9" * 4400 + b"}", 400, "invalid_json", "", None),
    ("lone surrogate", b'{"text": "ab\\ud800"}', 422, "invalid_character", "surrogate", None),
    ("lone low surrogate", b'{"tokens": ["\\udc00"]}', 422, "invalid_character", "surrogate", None),
    ("array body", b"[]", 422, "invalid_request", "JSON object", None),
    ("string body", b'"text"', 422, "invalid_request", "JSON object", None),
    ("no form", b'{"model": "tiny"}', 422, "invalid_request", "needs one of", None),
    ("text and tokens", b'{"text": "a", "tokens": ["a"]}', 422, "invalid_request", "both", None),
    ("text and documents", b'{"text": "a", "documents": []}', 422, "invalid_request", "both", None),
    ("text not a string", b'{"text": 5}', 422, "invalid_request", "text", None),
    ("text null", b'{"text": null}', 422, "invalid_request", "text", None),
    ("tokens a string", b'{"tokens": "a b"}', 422, "invalid_request", "tokens", None),
    ("token a number", b'{"tokens": ["a", 1]}', 422, "invalid_request", "tokens.1", None),
    ("extra field", b'{"text": "a", "lang": "en"}', 422, "unexpected_field", "lang", None),
    ("empty text", b'{"text": ""}', 422, "empty", "text is empty", None),
    ("blank text", b'{"text": " \\n\\t "}', 422, "blank_text", "white space", None),
    ("empty tokens", b'{"tokens": []}', 422, "empty", "tokens is empty", None),
    ("empty token", b'{"tokens": ["a", ""]}', 422, "empty", "tokens.1 is empty", None),
    ("blank token", b'{"tokens": ["a", " "]}', 422, "invalid_character", "U+0020", None),
    ("NUL in text", b'{"text": "a\\u0000b"}', 422, "invalid_character", "U+0000", None),
    ("BEL in text", b'{"text": "a\\u0007"}', 422, "invalid_character", "U+0007", None),
    ("C1 in text", b'{"text": "a\\u0085"}', 422, "invalid_character", "U+0085 (control", None),
    (
        "NEL in token",
        b'{"tokens": ["a\\u0085"]}',
        422,
        "invalid_character",
        "U+0085 (control",
        None,
    ),
    ("NBSP in token", b'{"tokens": ["a\\u00a0"]}', 422, "invalid_character", "U+00A0 (white", None),
    ("DEL in token", b'{"tokens": ["a\\u007f"]}', 422, "invalid_character", "U+007F", None),
    ("tab in token", b'{"tokens": ["a\\tb"]}', 422, "invalid_character", "U+0009", None),
    ("empty documents", b'{"documents": []}', 422, "empty", "documents is empty", None),
    ("document not object", b'{"documents": ["a"]}', 422, "invalid_request", "object", None),
    (
        "document with both",
        b'{"documents": [{"text": "a", "tokens": ["a"]}]}',
        422,
        "invalid_request",
        "both",
        None,
    ),
    (
        "control char in document",
        b'{"documents": [{"text": "ok"}, {"text": "\\u001b[31m"}]}',
        422,
        "invalid_character",
        "documents.1.text",
        None,
    ),
    ("model null", b'{"text": "a", "model": null}', 422, "invalid_model", "tiny", None),
    ("model number", b'{"text": "a", "model": 3}', 422, "invalid_model", "tiny", None),
    ("unknown model", b'{"text": "a", "model": "big"}', 404, "unknown_model", "'big'", None),
    ("model is a path", b'{"text": "a", "model": "/etc"}', 404, "unknown_model", "tiny", None),
    (
        "over char cap",
        json.dumps({"text": "x" * 41}).encode(),
        422,
        "limit_exceeded",
        "41 characters",
        "max_chars",
    ),
    (
        "over token cap",
        json.dumps({"tokens": ["a"] * 6}).encode(),
        422,
        "limit_exceeded",
        "6 items",
        "max_tokens",
    ),
    (
        "over token length cap",
        json.dumps({"tokens": ["a" * 9]}).encode(),
        422,
        "limit_exceeded",
        "tokens.0",
        "max_token_chars",
    ),
    (
        "over document cap",
        json.dumps({"documents": [{"text": "a"}] * 4}).encode(),
        422,
        "limit_exceeded",
        "4 items",
        "max_documents",
    ),
    (
        "over char cap in a document",
        json.dumps({"documents": [{"text": "a"}, {"text": "y" * 41}]}).encode(),
        422,
        "limit_exceeded",
        "documents.1.text",
        "max_chars",
    ),
]


@pytest.fixture(scope="module")
def limited(models_dir: Any, predictor: Any) -> Any:
    from serving.main import create_app
    from serving.settings import Settings

    app = create_app(Settings(models_dir=models_dir, **LIMITS), predictors={MODEL: predictor})
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def assert_error(r: Any, status: int, kind: str, fragment: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert "Traceback" not in r.text
    error = r.json()["error"]
    assert error["type"] == kind, error
    assert fragment in error["message"], error
    return error


@pytest.mark.parametrize(
    ("body", "status", "kind", "fragment", "limit"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_bad_request(
    limited: TestClient, body: bytes, status: int, kind: str, fragment: str, limit: str | None
) -> None:
    error = assert_error(
        limited.post("/v1/tag", content=body, headers=JSON), status, kind, fragment
    )
    if limit is not None:
        assert error["limit"] == {"name": limit, "value": LIMITS[limit]}
        assert limit in error["message"]


def test_limits_are_inclusive(limited: TestClient) -> None:
    ok = [
        {"text": "x" * 40},
        {"tokens": ["abcdefgh"] * 5},
        {"documents": [{"text": "a"}, {"tokens": ["b"]}, {"text": "c"}]},
    ]
    for body in ok:
        assert limited.post("/v1/tag", json=body).status_code == 200, body


def test_not_json_content_type(limited: TestClient) -> None:
    r = limited.post("/v1/tag", content=b'{"text": "a"}', headers={"content-type": "text/plain"})
    assert_error(r, 415, "unsupported_media_type", "application/json")
    r = limited.post("/v1/tag", content=b'{"text": "a"}', headers={"content-type": ""})
    assert r.status_code == 415


def test_missing_content_type_is_read_as_json(limited: TestClient) -> None:
    r = limited.post("/v1/tag", content=b'{"text": "Paris"}')
    assert r.status_code == 200


def test_body_over_byte_cap(make_client: Any) -> None:
    with make_client(max_body_bytes=100) as client:
        r = client.post("/v1/tag", content=json.dumps({"text": "a" * 200}).encode(), headers=JSON)
        error = assert_error(r, 413, "payload_too_large", "100 bytes")
        assert error["limit"] == {"name": "max_body_bytes", "value": 100}
        r = client.post("/v1/tag", content=iter([b'{"text": "', b"a" * 200, b'"}']), headers=JSON)
        assert r.status_code == 413


def test_default_byte_cap_admits_every_schema_valid_body(make_client: Any) -> None:
    # the largest escaped body the caps allow: astral characters are two \uXXXX escapes each
    with make_client(**LIMITS) as client:
        body = json.dumps({"documents": [{"text": "\U0001f600" * 40}] * 3}).encode()
        assert client.post("/v1/tag", content=body, headers=JSON).status_code == 200
        body = json.dumps({"documents": [{"tokens": ["\U0001f600" * 8] * 5}] * 3}).encode()
        assert client.post("/v1/tag", content=body, headers=JSON).status_code == 200


def test_nothing_reads_files(limited: TestClient, tmp_path: Any) -> None:
    secret = tmp_path / "s.txt"
    secret.write_text("Paris", encoding="utf-8")
    for body in ({"text": str(secret)[-40:]}, {"tokens": [secret.name]}, {"text": "file:s.txt"}):
        r = limited.post("/v1/tag", json=body)
        assert r.status_code == 200
        assert "Paris" not in r.text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=60))
def test_any_text_gets_200_or_422(limited: TestClient, text: str) -> None:
    r = limited.post("/v1/tag", content=json.dumps({"text": text}).encode(), headers=JSON)
    assert r.status_code in (200, 422), r.text
    if r.status_code == 200:
        body = r.json()
        for tok in body["tokens"]:
            assert text[tok["start"] : tok["end"]] == tok["text"]
    else:
        assert r.json()["error"]["message"]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.binary(max_size=40)
    | st.builds(
        lambda v: json.dumps(v).encode(),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=5),
            lambda c: (
                st.lists(c, max_size=3)
                | st.dictionaries(
                    st.sampled_from(["text", "tokens", "documents", "model", "x"]), c, max_size=3
                )
            ),
            max_leaves=8,
        ),
    )
)
def test_arbitrary_bodies_never_500(limited: TestClient, body: bytes) -> None:
    r = limited.post("/v1/tag", content=body, headers=JSON)
    assert r.status_code < 500, r.text
    assert r.status_code == 200 or r.json()["error"]["message"]
