"""One JSON error body for every failure: ``{"error": {"type", "message", "field"?, "limit"?}}``.

Status codes: 400 malformed JSON or invalid UTF-8, 404 unknown route or model, 405 wrong method,
408 a body not sent within ``body_timeout_s``, 413 body over the byte cap, 415 not JSON, 422 a
request the schema rejects (a cap the schema states included, so that schema-driven clients see
it as invalid data), 503 overloaded, timed out in the queue, or not ready (with
``Retry-After``). Handlers never put a traceback in a response.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from serving.guard import BodyTimeout

log = logging.getLogger("serving")


class SafeJSONResponse(JSONResponse):
    """JSON that stays valid UTF-8 even if a string holds a lone surrogate (escaped as ASCII)."""

    def render(self, content: Any) -> bytes:
        return safe_json(content)


def safe_json(content: Any) -> bytes:
    """Compact UTF-8 JSON; ASCII-escaped if a string holds a lone surrogate.

    orjson writes it (a /v1/tag answer in ~1 µs instead of ~18: the floats' text is most of
    the cost); what orjson refuses (a lone surrogate, an integer over 64 bits, a key that is
    not a string) is left to the standard encoder, as before. The two write the same bytes but
    for floats under 1e-4, which orjson writes without a zero-padded exponent (``1e-5``, not
    ``1e-05``): the same numbers to any JSON reader. A NaN or infinity (which no answer
    holds) is written as null.
    """
    try:
        return orjson.dumps(content)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        pass
    text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(content, ensure_ascii=True, allow_nan=False).encode("ascii")


class ApiError(Exception):
    """An error the client caused (4xx) or may retry (503); rendered as the uniform body."""

    def __init__(
        self,
        status: int,
        type: str,
        message: str,
        *,
        field: str | None = None,
        limit: tuple[str, int] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message
        self.field = field
        self.limit = limit
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body, fields present only when known."""
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
        if self.limit is not None:
            error["limit"] = {"name": self.limit[0], "value": self.limit[1]}
        return {"error": error}

    def response(self) -> JSONResponse:
        """The error as a response."""
        return SafeJSONResponse(self.body(), status_code=self.status, headers=self.headers)


def overloaded(retry_after_s: int, message: str) -> ApiError:
    """503 with Retry-After: the queue is full or the server is not ready."""
    return ApiError(503, "overloaded", message, headers={"Retry-After": str(retry_after_s)})


_STATUS_TYPES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        message = f"no route {request.url.path!r}"
    elif exc.status_code == 405:
        message = f"method {request.method} is not allowed on {request.url.path!r}"
    else:
        message = str(exc.detail)
    kind = _STATUS_TYPES.get(exc.status_code, "http_error")
    error = ApiError(exc.status_code, kind, message, headers=dict(exc.headers or {}))
    return error.response()


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    # Only query/path parameters reach here: /v1/tag validates its own body (see routes/tag.py).
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"msg": "invalid request", "loc": ()}
    field = ".".join(str(p) for p in first.get("loc", ()))
    return ApiError(422, "invalid_request", f"{field}: {first['msg']}", field=field).response()


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return ApiError(500, "internal_error", "internal error; the server log has details").response()


async def _body_timeout(_: Request, exc: Exception) -> JSONResponse:
    headers = {"Connection": "close"}
    return ApiError(408, "request_timeout", str(exc), headers=headers).response()


async def _client_gone(_: Request, exc: Exception) -> JSONResponse:
    # The client left while sending its body; the guard logs it and nobody reads this answer.
    return ApiError(499, "client_closed_request", "the client closed the connection").response()


def install_error_handlers(app: FastAPI) -> None:
    """Route every exception through the uniform error body."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(BodyTimeout, _body_timeout)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
