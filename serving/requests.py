"""What every task route shares: reading the body, picking the model, errors, inference.

A task route (``serving/routes/tag.py``, ``classify.py``...) declares its endpoints with
:class:`Endpoint` and handles a request in three steps::

    async with accept(request, ENDPOINT) as req:       # 503 unless ready; body -> 4xx or parsed
        items = ...                                     # the route's own planning
    results = await infer(req, items)                   # micro-batched; 503 when overloaded

:func:`accept` reads and validates the body, so that each way a body can be wrong gets its own
status and message: 415 not JSON, 413 over the byte cap, 400 invalid UTF-8 or malformed JSON,
404 a model name that is not loaded (or no model of the task at all), 422 a model of another
task, and 422 anything the request schema rejects (with the field and, for caps, the limit).
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar, get_type_hints

from fastapi import Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import ValidationError

from serving.batcher import BatcherClosed, DeadlineExceeded, QueueFull
from serving.deps import ready_registry
from serving.errors import ApiError, SafeJSONResponse, safe_json
from serving.guard import HEAD_HOLD, release_head_hold
from serving.registry import ModelRegistry, ServedModel
from serving.schemas import ErrorBody, RequestSchema
from serving.settings import Settings

SchemaBuilder = Callable[[Settings, tuple[str, ...]], RequestSchema]
T = TypeVar("T")

OFF_LOOP_BYTES = 4096
"""Bodies larger than this are planned and answered in the preparation thread."""


@dataclass(frozen=True)
class Endpoint:
    """One task route's POST path: which task's models it serves and its request schema.

    ``build_schema(settings, model_names)`` makes the request schema for the loaded models of
    ``task`` (their names become the ``model`` enum); it is published as the OpenAPI component
    ``schema_name``. The app builds it at start-up (``app.state.schemas[path]``).
    """

    path: str
    task: str
    schema_name: str
    build_schema: SchemaBuilder
    also: tuple[str, ...] = ()
    """Further tasks whose models the path serves too (/v1/generate: ``conditional_lm``)."""
    bytes_per_token: int = 8
    """How an overloaded server guesses a request's work from its ``Content-Length`` before
    reading the body (one token per this many bytes; English words average about 6 characters
    with their space); 0: the body says nothing about the work (/v1/generate)."""

    def head_cost(self, content_length: int) -> int:
        """The work guessed from the body's size (0 when unknown or not telling)."""
        if self.bytes_per_token <= 0 or content_length <= 0:
            return 0
        return content_length // self.bytes_per_token

    @property
    def tasks(self) -> tuple[str, ...]:
        return (self.task, *self.also)

    def names(self, models: ModelRegistry) -> tuple[str, ...]:
        """The loaded models this path serves, task by task."""
        return tuple(n for task in self.tasks for n in models.names(task))

    @property
    def openapi_extra(self) -> dict[str, Any]:
        """The ``openapi_extra`` of the route: its body is the published component."""
        ref = {"$ref": f"#/components/schemas/{self.schema_name}"}
        return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer"},
    }
}
RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The body is not valid UTF-8 or not valid JSON."},
    404: {
        "model": ErrorBody,
        "description": "No loaded model has the requested name, or none of the route's task.",
    },
    408: {
        "model": ErrorBody,
        "description": "The body did not arrive within body_timeout_s (the connection closes).",
    },
    413: {"model": ErrorBody, "description": "The body is larger than the byte cap."},
    415: {"model": ErrorBody, "description": "The body is not sent as application/json."},
    422: {
        "model": ErrorBody,
        "description": "The request breaks the schema: a wrong type, a missing or unexpected "
        "field, an empty string or list, a forbidden character, a cap (error.limit), or a "
        "model of another task (wrong_task).",
    },
    503: {
        "model": ErrorBody,
        "description": "Overloaded (the work budget max_queued_tokens or the queue is full, "
        "or the request's queued work passed request_timeout_s), or the server is starting or "
        "shutting down.",
        "headers": _RETRY_AFTER,
    },
}
"""The error responses every task route documents."""


class RequestRoute(APIRoute):
    """A task route: its endpoint takes the ``Request`` alone and returns a ``Response``.

    FastAPI's own handler solves the (here empty) dependencies, reads the body for a body
    parameter there is none of, and sets up telemetry, about a tenth of a small request's
    CPU on /v1/tag; the endpoint does all that itself (:func:`accept`), so it is called
    directly. The route is still an ``APIRoute``: its path, ``responses`` and
    ``openapi_extra`` are published as before, and errors reach the app's handlers.
    """

    @property
    def direct(self) -> bool:
        """Whether the endpoint is ``async def f(request: Request) -> <a Response class>``,
        called as it is (here, and by :class:`TaskRoutes`)."""
        return _takes_request_returns_response(self.endpoint)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        if not self.direct:
            return super().get_route_handler()  # anything else gets FastAPI's handling
        endpoint: Callable[[Request], Coroutine[Any, Any, Response]] = self.endpoint
        return endpoint


class TaskRoutes:
    """Pure ASGI middleware, the innermost: a ``POST`` to a task route's exact path is handed
    to its endpoint here, past the rest of the stack.

    What it skips does nothing for these routes: FastAPI's exception and dependency wrappers
    (the endpoint raises only errors the app has handlers for, and has no dependencies), the
    router's matching over every route, and the per-route request wrappers; about a tenth of
    the event loop's time on a small /v1/tag request. What it keeps: the scope the router
    would set (``route``, ``endpoint``, ``path_params``: /metrics labels requests by their
    route), the app's handlers for the errors the endpoint raises (looked up by class, as
    Starlette does; anything else goes up to the server-error handler, as before), and every
    middleware outside it. Any other request (another method, path, or a trailing slash) goes
    down the stack.
    """

    def __init__(self, app: Any, fastapi_app: Any, routes: Sequence[Any]) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self._routes = {
            route.path: route
            for route in routes
            if isinstance(route, RequestRoute) and route.methods == {"POST"} and route.direct
        }
        """Path -> route: the task routes (``RequestRoute`` with a direct endpoint)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        path, root = scope["path"], scope.get("root_path", "")
        if root and path.startswith(root + "/"):
            path = path[len(root) :]
        route = self._routes.get(path)
        if route is None:
            await self.app(scope, receive, send)
            return
        scope["route"], scope["endpoint"], scope["path_params"] = route, route.endpoint, {}
        request = Request(scope, receive, send)
        started = False

        async def sender(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            response = await route.endpoint(request)
            await response(scope, receive, sender)
        except Exception as e:
            handler = self._handler(e)
            if handler is None or started:
                raise
            await (await handler(request, e))(scope, receive, sender)

    def _handler(self, error: Exception) -> Any:
        """The app's handler for ``error``'s class, but not the catch-all (server errors)."""
        handlers = self.fastapi_app.exception_handlers
        for cls in type(error).__mro__:
            if cls is Exception:
                return None
            if cls in handlers:
                return handlers[cls]
        return None


def _takes_request_returns_response(endpoint: Callable[..., Any]) -> bool:
    """Whether ``endpoint`` is ``async def f(request: Request) -> <a Response class>``."""
    try:
        hints = get_type_hints(endpoint)
    except (NameError, TypeError):
        return False
    params = list(inspect.signature(endpoint).parameters)
    returns = hints.get("return")
    return (
        inspect.iscoroutinefunction(endpoint)
        and len(params) == 1
        and hints.get(params[0]) is Request
        and isinstance(returns, type)
        and issubclass(returns, Response)
    )


@dataclass(frozen=True)
class Accepted:
    """A request that passed every check: its parsed body and the model that will answer."""

    request: Request
    data: Any
    parsed: Any
    model: ServedModel
    large: bool = False
    """A body over ``OFF_LOOP_BYTES``: its planning and its answer are made off the loop."""
    reserved: list[int] = field(default_factory=list)
    """The work reserved by :meth:`admit` (at most one entry), handed to the batcher by infer."""

    @property
    def settings(self) -> Settings:
        return self.request.app.state.settings

    @property
    def model_ref(self) -> dict[str, str]:
        """``{"name", "version"}`` of the answering model, for the response."""
        return {"name": self.model.name, "version": self.model.version}

    def admit(self, estimate: int) -> None:
        """Reserve ``estimate`` tokens of work before preparing the request; 503 if over budget.

        Routes call it before the costly part (splitting texts into sentences), so that an
        overloaded server refuses at once instead of after preparing the request. The work
        held for the request since its head (guessed from its size) is given back first.
        """
        release_head_hold(self.request.scope)
        try:
            self.reserved.append(self.model.batcher.reserve(max(1, estimate)))
        except QueueFull as e:
            raise _overloaded(self.settings, e) from None

    async def off_loop(self, fn: Callable[..., T], *args: Any, answer: bool = False) -> T:
        """``fn(*args)``: for a large request in the app's preparation thread (``answer``: its
        answer thread), else here.

        Splitting 64 long texts into sentences or building their answer takes seconds of
        Python; on the event loop it would hold up every other request, /healthz included.
        """
        if not self.large:
            return fn(*args)
        state = self.request.app.state
        executor = state.answer_executor if answer else state.prep_executor
        return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)

    async def respond(self, body: dict[str, Any]) -> Response:
        """The JSON answer; a large one is serialised off the loop, one item at a time."""
        if not self.large:
            return SafeJSONResponse(body)
        content = await self.off_loop(render_json, body, answer=True)
        return Response(content, media_type="application/json")


def render_json(body: dict[str, Any]) -> bytes:
    """``body`` as compact UTF-8 JSON, each item of a top-level list dumped on its own.

    The C encoder holds the GIL for a whole ``dumps`` call; item by item, the event loop gets
    its turn between items even while a 30 MB answer is written.
    """
    parts = []
    for key, value in body.items():
        if isinstance(value, list):
            items = b",".join(safe_json(item) for item in value)
            parts.append(safe_json(key) + b":[" + items + b"]")
        else:
            parts.append(safe_json(key) + b":" + safe_json(value))
    return b"{" + b",".join(parts) + b"}"


@asynccontextmanager
async def accept(request: Request, endpoint: Endpoint) -> AsyncIterator[Accepted]:
    """Check readiness, read and validate the body, pick the model; raise the right ApiError.

    The block runs while the request still counts as arriving (the batchers wait for it):
    put the route's own planning there, and submit the work after it.
    """
    # The app's state is read here rather than through Depends: FastAPI's dependency solving
    # costs more per request than the lookups themselves, on the hottest route.
    models: ModelRegistry = await ready_registry(request)  # 503 unless ready
    settings: Settings = request.app.state.settings
    schema: RequestSchema = request.app.state.schemas[endpoint.path]
    if HEAD_HOLD not in request.scope:  # else checked, and its work held, at its head
        declared = request.headers.get("content-length", "")
        refuse_early(models, endpoint, settings, int(declared) if declared.isdigit() else 0)
    with request.app.state.arrivals.arriving():
        body = await read_body(request, settings.body_limit())
        data = parse_json(body)
        name = data.get("model") if isinstance(data, dict) else None
        check_model_name(models, name, endpoint)
        try:
            parsed = schema.adapter.validate_python(data)
        except ValidationError as e:
            raise validation_error(e, data, settings, schema) from None
        model = select_model(models, getattr(parsed, "model", None), endpoint)
        accepted = Accepted(request, data, parsed, model, large=len(body) > OFF_LOOP_BYTES)
        try:
            yield accepted
        except BaseException:
            for reserved in accepted.reserved:
                model.batcher.release(reserved)
            raise


def refuse_early(
    models: ModelRegistry, endpoint: Endpoint, settings: Settings, content_length: int = 0
) -> None:
    """503 before reading the body when no model of the task has room for the request's work,
    guessed from its ``Content-Length`` (:meth:`Endpoint.head_cost`).

    Under a storm of heavy requests, refusing costs the server next to nothing this way,
    instead of reading, parsing and validating each body only to refuse it (which, at
    thousands of 10 KB bodies a second, kept the event loop and /healthz waiting).
    """
    batchers = [models.models[n].batcher for n in endpoint.names(models)]
    cost = endpoint.head_cost(content_length)
    if batchers and all(b.refuses(cost) for b in batchers):
        raise _overloaded(settings, batchers[0].refuse_early(cost))


def shedder(
    app: Any, endpoints: Sequence[Endpoint]
) -> Callable[[str, int, bool], bytes | Callable[[], None] | None]:
    """``shed(path, content_length, body_here)``, which ``serving.protocol`` calls as soon as
    the head of a POST is read. It returns

    - the raw 503 response when :func:`refuse_early` would refuse the request;
    - else, for a task path and a body that came whole with the head (``body_here``), the
      release of the work it holds for the request (its :meth:`Endpoint.head_cost`) until the
      route admits it by its real estimate: the requests whose heads pass together (a herd
      that finds room after a batch) count against the budget at once, instead of each being
      parsed and validated only to be refused;
    - else None.

    Under a storm, a refusal thus costs the event loop a few microseconds.
    """
    by_path = {e.path: e for e in endpoints}

    def shed(path: str, content_length: int, body_here: bool) -> bytes | Callable[[], None] | None:
        endpoint = by_path.get(path)
        models: ModelRegistry | None = app.state.registry
        if endpoint is None or models is None or not models.ready:
            return None
        try:
            refuse_early(models, endpoint, app.state.settings, content_length)
        except ApiError as e:
            app.state.metrics.requests.labels("POST", path, "503").inc()
            app.state.metrics.latency.labels("POST", path, "503").observe(0.0)
            return _raw_response(e)
        cost = endpoint.head_cost(content_length)
        names = endpoint.names(models)
        if not body_here or not cost or len(names) != 1:  # several: the body names the model
            return None
        batcher = models.models[names[0]].batcher
        held = batcher.hold(cost)
        return lambda: batcher.release(held)

    return shed


def _raw_response(error: ApiError) -> bytes:
    body = safe_json(error.body())
    head = [f"HTTP/1.1 {error.status} Service Unavailable", "content-type: application/json"]
    head += [f"{k.lower()}: {v}" for k, v in error.headers.items()]
    head.append(f"content-length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def check_model_name(models: ModelRegistry, name: Any, endpoint: Endpoint) -> None:
    """404 for a name that is not loaded (or no model of the task), 422 for another task's."""
    names = endpoint.names(models)
    if not names:
        raise ApiError(
            404,
            "unknown_model",
            f"no {endpoint.task!r} model is loaded, so {endpoint.path} cannot answer",
        )
    if not isinstance(name, str) or name in names:
        return  # a valid name, or a type the schema rejects
    shown = ascii(name[:80])
    other = models.models.get(name)
    if other is not None:
        raise ApiError(
            422,
            "wrong_task",
            f"model {shown} is a {other.task!r} model; {endpoint.path} needs a "
            f"{endpoint.task!r} model: {', '.join(names)}",
            field="model",
        )
    raise ApiError(
        404,
        "unknown_model",
        f"no model named {shown}; loaded {endpoint.task!r} models: {', '.join(names)}",
        field="model",
    )


def select_model(models: ModelRegistry, name: str | None, endpoint: Endpoint) -> ServedModel:
    """The named model (already checked) or the task's default."""
    task = endpoint.task
    if name in models.models:
        task = models.models[name].task
    elif name is None:
        task = next((t for t in endpoint.tasks if t in models.defaults), task)
    try:
        return models.select(name, task)
    except KeyError:  # pragma: no cover - check_model_name refuses these first
        raise ApiError(404, "unknown_model", f"no {endpoint.task!r} model named {name!r}") from None


async def infer(
    req: Accepted, items: Sequence[Any], costs: Sequence[int] | None = None
) -> list[Any]:
    """The model's results for ``items`` (micro-batched, ``costs`` as ``MicroBatcher.submit``
    takes them); 503 + Retry-After when it cannot."""
    reserved = req.reserved.pop() if req.reserved else None
    with _refusals(req.settings):
        return await req.model.batcher.submit(list(items), reserved=reserved, costs=costs)


async def run_call(req: Accepted, fn: Callable[[], T]) -> T:
    """``fn()`` in the inference thread, queued with the model's other work
    (``MicroBatcher.call``), as the work :meth:`Accepted.admit` reserved for it (call that
    first); dropped unrun when the client leaves or the deadline passes; 503 + Retry-After
    when it cannot run. ``fn``'s own exceptions reach the caller."""
    reserved = req.reserved.pop() if req.reserved else None
    with _refusals(req.settings):
        result: T = await req.model.batcher.call(fn, reserved or 1, reserved=reserved)
    return result


@contextmanager
def _refusals(settings: Settings) -> Iterator[None]:
    """The batcher's refusals as 503 + Retry-After."""
    retry = {"Retry-After": str(settings.retry_after_s)}
    try:
        yield
    except QueueFull as e:
        raise _overloaded(settings, e) from None
    except DeadlineExceeded as e:
        message = f"the server is overloaded: the request was {e}; retry shortly"
        raise ApiError(503, "timeout", message, headers=retry) from None
    except BatcherClosed:
        raise ApiError(
            503, "not_ready", "the server is shutting down; retry shortly", headers=retry
        ) from None


def _overloaded(settings: Settings, error: QueueFull) -> ApiError:
    retry = {"Retry-After": str(settings.retry_after_s)}
    return ApiError(503, "overloaded", str(error), limit=error.limit, headers=retry)


def estimate_tokens(texts: Sequence[str]) -> int:
    """A quick lower bound of the tokens in ``texts``: their white-space separated words."""
    return sum(len(text.split()) for text in texts)


# ---------------------------------------------------------------------------------------------
# The body


async def read_json(request: Request, limit: int) -> Any:
    """The body parsed as JSON, or the right 4xx."""
    return parse_json(await read_body(request, limit))


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body of a JSON request: 415 not JSON, 413 over ``limit`` bytes."""
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
    return bytes(body)


def parse_json(body: bytes) -> Any:
    """The body parsed as JSON: 400 empty, not UTF-8 or malformed."""
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


# ---------------------------------------------------------------------------------------------
# Schema violations -> 422

LIMITS: Mapping[tuple[str, str], str] = {
    ("string_too_long", "text"): "max_chars",
    ("string_too_long", "token"): "max_token_chars",
    ("too_long", "tokens"): "max_tokens",
    ("too_long", "documents"): "max_documents",
}
"""(pydantic error type, kind of field) -> the setting that caps it."""


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


def validation_error(
    error: ValidationError, data: Any, settings: Settings, schema: RequestSchema
) -> ApiError:
    """The first schema violation as a 422 naming the field and, for caps, the limit."""
    first = error.errors(include_url=False)[0]  # input included: lengths
    kind, loc = first["type"], tuple(first.get("loc", ()))
    field = _field(loc) or None
    what = _kind(field or "")
    name = field or "the body"
    ctx = first.get("ctx") or {}
    limit_name = LIMITS.get((kind, what))
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
        keys = schema.forms if kind == "request_form" else schema.document_forms
        return ApiError(422, "invalid_request", _form_message(kind, keys, data, loc), field=field)
    if kind in ("invalid_character", "blank_text"):
        return ApiError(422, kind, f"{name} {first['msg']}", field=field)
    if kind == "missing":
        return ApiError(422, "missing_field", f"{name} is required", field=field)
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        message = f"{name} must be a JSON object, not {_json_type(first.get('input'))}"
        return ApiError(422, "invalid_request", message, field=field)
    if kind == "literal_error" and what == "model":
        return ApiError(422, "invalid_model", f"model must be {ctx.get('expected')}", field=field)
    return ApiError(422, "invalid_request", f"{name}: {first['msg']}", field=field)


def _form_message(kind: str, keys: tuple[str, ...], data: Any, loc: tuple[Any, ...]) -> str:
    """Why an object matched none of the request (or document) forms."""
    value = data
    for item in _clean(loc):
        try:
            value = value[item]
        except (KeyError, IndexError, TypeError):
            break
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
