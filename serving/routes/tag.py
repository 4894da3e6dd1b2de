"""POST /v1/tag: tag a text, a tokenised sentence, or a batch of documents.

The route reads and validates its own body, so that each way a body can be wrong gets its own
status and message: 415 not JSON, 413 over the byte cap, 400 invalid UTF-8 or malformed JSON,
404 a model name that is not loaded, 422 anything the request schema rejects (with the field and,
for caps, the limit). The schema itself is published under ``components/schemas/TagRequest``.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError

from serving.batcher import BatcherClosed, QueueFull
from serving.deps import ready_registry
from serving.errors import ApiError, SafeJSONResponse
from serving.registry import ModelRegistry
from serving.schemas import BatchResponse, ErrorBody, RequestSchema, TagResponse
from serving.settings import Settings
from serving.tagging import DocumentPlan, assemble, plan_text, plan_tokens

router = APIRouter(tags=["tagging"])

TASK = "ner"

_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer"},
    }
}
RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The body is not valid UTF-8 or not valid JSON."},
    404: {"model": ErrorBody, "description": "No loaded model has the requested name."},
    413: {"model": ErrorBody, "description": "The body is larger than the byte cap."},
    415: {"model": ErrorBody, "description": "The body is not sent as application/json."},
    422: {
        "model": ErrorBody,
        "description": "The request breaks the schema: a wrong type, a missing or unexpected "
        "field, an empty string or list, a forbidden character, or a cap (error.limit).",
    },
    503: {
        "model": ErrorBody,
        "description": "The queue is full, or the server is starting or stopping.",
        "headers": _RETRY_AFTER,
    },
}
REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TagRequest"}}},
    }
}

# pydantic error type -> (our error type, limit setting for the field's kind)
_LIMITS = {
    ("string_too_long", "text"): "max_chars",
    ("string_too_long", "token"): "max_token_chars",
    ("too_long", "tokens"): "max_tokens",
    ("too_long", "documents"): "max_documents",
}


async def read_json(request: Request, limit: int) -> Any:
    """The body parsed as JSON, or the right 4xx."""
    content_type = request.headers.get("content-type")
    if content_type is not None:
        mime = content_type.split(";", 1)[0].strip().lower()
        if mime != "application/json" and not mime.endswith("+json"):
            raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(limit)
    if not body.strip():
        raise ApiError(400, "invalid_json", "the body is empty; send a JSON object")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ApiError(
            400,
            "invalid_utf8",
            f"the body is not valid UTF-8: byte 0x{body[e.start]:02x} at offset {e.start} "
            f"({e.reason})",
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ApiError(
            400, "invalid_json", f"malformed JSON at line {e.lineno} column {e.colno}: {e.msg}"
        ) from None
    except (ValueError, RecursionError) as e:  # e.g. an integer of 5000 digits, deep nesting
        reason = "nested too deeply" if isinstance(e, RecursionError) else str(e)
        raise ApiError(400, "invalid_json", f"unreadable JSON: {reason}") from None


def _too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        "payload_too_large",
        f"the body is over {limit} bytes",
        limit=("max_body_bytes", limit),
    )


def _clean(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """A pydantic location without the union tags (each tag repeats the key that follows)."""
    out: list[Any] = []
    for item in loc:
        if out and isinstance(item, str) and out[-1] == item:
            continue
        out.append(item)
    return tuple(out)


def _field(loc: tuple[Any, ...]) -> str:
    """``documents.2.text`` from a pydantic location."""
    parts = (str(p) for p in _clean(loc))
    return ".".join(p if p.isprintable() else ascii(p)[1:-1] for p in parts)


def _kind(field: str) -> str:
    """What a field holds: text, token, tokens, documents, model, or the body itself."""
    parts = field.split(".")
    last = parts[-1] if parts else ""
    if last.isdigit() and len(parts) > 1 and parts[-2] == "tokens":
        return "token"
    return last or "body"


def validation_error(error: ValidationError, data: Any, settings: Settings) -> ApiError:
    """The first schema violation as a 422 naming the field and, for caps, the limit."""
    first = error.errors(include_url=False)[0]  # input included: lengths
    kind, loc = first["type"], tuple(first.get("loc", ()))
    field = _field(loc) or None
    what = _kind(field or "")
    name = field or "the body"
    ctx = first.get("ctx") or {}
    limit_name = _LIMITS.get((kind, what))
    if limit_name is not None:
        value = int(getattr(settings, limit_name))
        actual = ctx.get("actual_length")
        if actual is None and isinstance(first.get("input"), str | list):
            actual = len(first["input"])
        unit = "characters" if kind == "string_too_long" else "items"
        has = f"has {actual} {unit}, " if actual is not None else "is "
        message = f"{name} {has}over the limit of {value} {unit} ({limit_name})"
        return ApiError(422, "limit_exceeded", message, field=field, limit=(limit_name, value))
    if kind == "string_unicode":
        message = f"{name} contains a lone surrogate; text must be valid Unicode"
        return ApiError(422, "invalid_character", message, field=field)
    if kind in ("string_too_short", "too_short"):
        unit = "item" if kind == "too_short" else "character"
        message = f"{name} is empty; it needs at least one {unit}"
        return ApiError(422, "empty", message, field=field)
    if kind == "extra_forbidden":
        parent = _field(loc[:-1]) or "the body"
        message = f"unexpected field {_field(loc[-1:])!r} in {parent}"
        return ApiError(422, "unexpected_field", message, field=field)
    if kind in ("request_form", "document_form"):
        return ApiError(422, "invalid_request", _form_message(kind, data, loc), field=field)
    if kind in ("invalid_character", "blank_text"):
        return ApiError(422, kind, f"{name} {first['msg']}", field=field)
    if kind == "missing":
        return ApiError(422, "missing_field", f"{name} is required", field=field)
    if kind == "literal_error" and what == "model":
        return ApiError(422, "invalid_model", f"model must be {ctx.get('expected')}", field=field)
    return ApiError(422, "invalid_request", f"{name}: {first['msg']}", field=field)


def _form_message(kind: str, data: Any, loc: tuple[Any, ...]) -> str:
    """Why an object matched none of the request (or document) forms."""
    value = data
    for item in _clean(loc):
        try:
            value = value[item]
        except (KeyError, IndexError, TypeError):
            break
    keys = ("text", "tokens", "documents") if kind == "request_form" else ("text", "tokens")
    where = "the body" if kind == "request_form" else f"document {_field(loc)}"
    if not isinstance(value, dict):
        return f"{where} must be a JSON object, not {_json_type(value)}"
    present = [k for k in keys if k in value]
    if present:
        return f"{where} has both {' and '.join(present)}; send exactly one of {', '.join(keys)}"
    return f"{where} needs one of {', '.join(keys)}"


def _json_type(value: Any) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    if value is None:
        return "null"
    if isinstance(value, list):
        return "an array"
    return names.get(type(value), type(value).__name__)


def _plans(parsed: Any, max_tokens: int) -> tuple[list[DocumentPlan], bool]:
    """The document plans of a validated request, and whether it was a batch."""
    documents = getattr(parsed, "documents", None)
    items = [parsed] if documents is None else documents
    plans = [
        plan_text(item.text, max_tokens) if hasattr(item, "text") else plan_tokens(item.tokens)
        for item in items
    ]
    return plans, documents is not None


@router.post(
    "/v1/tag",
    summary="Tag named entities",
    response_model=TagResponse | BatchResponse,
    responses=RESPONSES,
    openapi_extra=REQUEST_BODY,
)
async def tag(request: Request) -> SafeJSONResponse:
    """Tag `{"text"}`, `{"tokens"}` or `{"documents": [...]}`, optionally with a `model` name.

    A single document gets `{"model", "tokens", "entities"}`; a batch gets `{"model", "results"}`
    in request order. Offsets are code-point indices into the text (for tokens: the tokens
    joined by single spaces), so that `text[start:end] == token.text`.
    """
    # The app's state is read here rather than through Depends: FastAPI's dependency solving
    # costs more per request than the lookups themselves, on the hottest route.
    models: ModelRegistry = await ready_registry(request)  # 503 unless ready
    settings: Settings = request.app.state.settings
    schema: RequestSchema = request.app.state.request_schema
    with request.app.state.arrivals.arriving():
        data = await read_json(request, settings.body_limit())
        name = data.get("model") if isinstance(data, dict) else None
        if isinstance(name, str) and name not in models.names(TASK):
            shown = ascii(name[:80])
            raise ApiError(
                404,
                "unknown_model",
                f"no model named {shown}; loaded: {', '.join(models.names(TASK))}",
                field="model",
            )
        try:
            parsed = schema.adapter.validate_python(data)
        except ValidationError as e:
            raise validation_error(e, data, settings) from None
        model = models.select(parsed.model, TASK)
        plans, batch = _plans(parsed, settings.max_tokens)
        sentences = [s for plan in plans for s in plan.sentences()]
    try:
        tagged = await model.batcher.submit(sentences)
    except QueueFull:
        raise ApiError(
            503,
            "overloaded",
            f"too many requests are waiting (queue_size {settings.queue_size}); retry shortly",
            limit=("queue_size", settings.queue_size),
            headers={"Retry-After": str(settings.retry_after_s)},
        ) from None
    except BatcherClosed:
        raise ApiError(
            503,
            "not_ready",
            "the server is shutting down; retry shortly",
            headers={"Retry-After": str(settings.retry_after_s)},
        ) from None
    documents = []
    offset = 0
    for plan in plans:
        n = len(plan.windows)
        documents.append(assemble(plan, tagged[offset : offset + n]))
        offset += n
    ref = {"name": model.name, "version": model.version}
    body = {"model": ref, "results": documents} if batch else {"model": ref, **documents[0]}
    return SafeJSONResponse(body)
