"""Request and response models of the HTTP API.

The request models are built per app (``build_request_schema``) because the caps are settings
and the loaded model names are known only at start-up: the published OpenAPI schema then states
every rule the server applies (lengths, item counts, patterns, ``additionalProperties: false``,
the model names), so that a schema-driven client knows exactly what is valid.

Patterns are ECMA-262 (JSON Schema) and say:
- text: no control characters other than tab, newline and carriage return, and at least one
  character that is not white space;
- a given token: no control characters and no white space.
Every string must also be valid Unicode: a lone surrogate (``"\\ud800"``) is rejected with 422.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
)
from pydantic_core import PydanticCustomError

# Character classes, spelled with \uXXXX escapes that ECMA-262 and Python's re read alike.
_CONTROL = r"\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f"  # C0/C1 minus \t \n \r
_SURROGATE = r"\ud800-\udfff"
# Python's str.isspace() set, less the control characters excluded anyway.
_SPACE = r"\u0009\u000a\u000d\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"

# The published patterns leave lone surrogates out: a JSON Schema (Unicode) regex cannot name them,
# and a string holding one is not valid Unicode, so no schema-valid value has one. The server
# rejects them all the same (pydantic's string_unicode error, or the checks below).
_TEXT_BODY = f"[{_SPACE}]*[^{_CONTROL}{_SPACE}][^{_CONTROL}]*"
_TOKEN_BODY = f"[^{_CONTROL}{_SPACE}]+"
TEXT_PATTERN = f"^{_TEXT_BODY}$"
TOKEN_PATTERN = f"^{_TOKEN_BODY}$"

_TEXT_RE = re.compile(f"[{_SPACE}]*[^{_CONTROL}{_SURROGATE}{_SPACE}][^{_CONTROL}{_SURROGATE}]*")
_TOKEN_RE = re.compile(f"[^{_CONTROL}{_SURROGATE}{_SPACE}]+")
_BAD_TEXT_CHAR = re.compile(f"[{_CONTROL}{_SURROGATE}]")
_BAD_TOKEN_CHAR = re.compile(f"[{_CONTROL}{_SURROGATE}{_SPACE}]")


def describe_char(ch: str) -> str:
    """``U+0007 (control character)`` and the like, for error messages."""
    cp = ord(ch)
    if 0xD800 <= cp <= 0xDFFF:
        kind = "lone surrogate; text must be valid Unicode"
    elif unicodedata.category(ch) == "Cc":  # before white space: U+0085 is both
        kind = "control character"
    elif ch.isspace():
        kind = "white space"
    else:
        kind = "control character"
    return f"U+{cp:04X} ({kind})"


def _check_text(value: str) -> str:
    if _TEXT_RE.fullmatch(value):
        return value
    bad = _BAD_TEXT_CHAR.search(value)
    if bad is not None:
        raise PydanticCustomError(
            "invalid_character",
            "contains {char} at index {index}",
            {"char": describe_char(bad.group()), "index": bad.start()},
        )
    raise PydanticCustomError("blank_text", "is only white space; send some text to tag")


def _check_token(value: str) -> str:
    if _TOKEN_RE.fullmatch(value):
        return value
    bad = _BAD_TOKEN_CHAR.search(value)
    assert bad is not None  # the pattern fails only on a bad character (emptiness is checked first)
    raise PydanticCustomError(
        "invalid_character",
        "contains {char} at index {index}; a token is a non-empty string without white space "
        "or control characters",
        {"char": describe_char(bad.group()), "index": bad.start()},
    )


_STRICT = ConfigDict(strict=True, extra="forbid")


def _drop_default(schema: dict[str, Any]) -> None:
    # An omitted ``model`` means the default model; ``null`` is not a valid value.
    schema.pop("default", None)


@dataclass(frozen=True)
class RequestLimits:
    """The caps the request schemas state (from ``Settings``)."""

    max_chars: int
    max_tokens: int
    max_documents: int
    max_token_chars: int

    @classmethod
    def of(cls, settings: Any) -> RequestLimits:
        """The caps of a ``serving.settings.Settings``."""
        return cls(
            max_chars=settings.max_chars,
            max_tokens=settings.max_tokens,
            max_documents=settings.max_documents,
            max_token_chars=settings.max_token_chars,
        )


@dataclass(frozen=True)
class RequestSchema:
    """One route's request models: ``adapter`` validates a parsed JSON body.

    ``forms`` are the keys that tell the request forms apart (exactly one of them is sent), and
    ``document_forms`` those of a document in a batch; error messages name them.
    """

    adapter: TypeAdapter[Any]
    models: tuple[type[BaseModel], ...]
    forms: tuple[str, ...] = ()
    document_forms: tuple[str, ...] = ()

    def json_schema(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(schema of the request, component schemas it refers to), for OpenAPI."""
        schema = self.adapter.json_schema(ref_template="#/components/schemas/{model}")
        defs = schema.pop("$defs", {})
        return schema, defs


def _form(value: Any, keys: tuple[str, ...]) -> str | None:
    """Which of ``keys`` the object has, when it has exactly one of them."""
    if isinstance(value, dict):
        present = [k for k in keys if k in value]
        if len(present) == 1:
            return present[0]
    elif isinstance(value, BaseModel):
        return next((k for k in keys if hasattr(value, k)), None)
    return None


def one_of(forms: dict[str, Any], error_type: str, message: str) -> Any:
    """The union of ``forms`` (key -> model), told apart by which one key an object has.

    An object with none or several of the keys fails with ``error_type`` (``request_form`` or
    ``document_form``), which ``serving.requests.validation_error`` explains.
    """
    keys = tuple(forms)
    members = tuple(Annotated[model, Tag(key)] for key, model in forms.items())
    return Annotated[
        Union[members],  # noqa: UP007
        Discriminator(
            lambda v: _form(v, keys), custom_error_type=error_type, custom_error_message=message
        ),
    ]


def text_type(limits: RequestLimits, what: str) -> Any:
    """A raw text: 1..max_chars characters, no control characters, not only white space."""
    return Annotated[
        str,
        Field(
            min_length=1,
            max_length=limits.max_chars,
            json_schema_extra={"pattern": TEXT_PATTERN},
            description=f"Raw text, at most {limits.max_chars} characters. {what}",
        ),
        AfterValidator(_check_text),
    ]


def model_type(model_names: tuple[str, ...]) -> Any:
    """The optional ``model`` field: one of the loaded names of the route's task."""
    names_t: Any = Literal[model_names] if model_names else str  # type: ignore[valid-type]
    return Annotated[
        names_t,
        Field(
            default=None,
            description="A loaded model's name (GET /v1/models); omitted: the task's default "
            "model.",
            json_schema_extra=_drop_default,
        ),
    ]


def documents_type(limits: RequestLimits, document_t: Any) -> Any:
    """The ``documents`` list of a batch request: 1..max_documents documents."""
    return Annotated[
        list[document_t],
        Field(
            min_length=1,
            max_length=limits.max_documents,
            description=f"At most {limits.max_documents} documents.",
        ),
    ]


def build_request_schema(limits: RequestLimits, model_names: tuple[str, ...]) -> RequestSchema:
    """The /v1/tag request models (TagRequest) for these caps and these loaded model names."""
    text_t = text_type(
        limits,
        f"It is split into sentences; a sentence of more than {limits.max_tokens} tokens is "
        "tagged in windows of that many tokens. Offsets in the response index this string "
        "(code points).",
    )
    token_t = Annotated[
        str,
        Field(
            min_length=1,
            max_length=limits.max_token_chars,
            json_schema_extra={"pattern": TOKEN_PATTERN},
        ),
        AfterValidator(_check_token),
    ]
    tokens_t = Annotated[
        list[token_t],
        Field(
            min_length=1,
            max_length=limits.max_tokens,
            description=f"One tokenised sentence, at most {limits.max_tokens} tokens. Offsets "
            "in the response index the tokens joined by single spaces.",
        ),
    ]
    model_t = model_type(model_names)

    class TextDocument(BaseModel):
        """A raw text to tag."""

        model_config = _STRICT
        text: text_t  # type: ignore[valid-type]

    class TokensDocument(BaseModel):
        """A tokenised sentence to tag."""

        model_config = _STRICT
        tokens: tokens_t

    document_t = one_of(
        {"text": TextDocument, "tokens": TokensDocument},
        "document_form",
        "a document is an object with exactly one of text or tokens",
    )

    class TextRequest(BaseModel):
        """Tag one raw text."""

        model_config = _STRICT
        text: text_t  # type: ignore[valid-type]
        model: model_t  # type: ignore[valid-type]

    class TokensRequest(BaseModel):
        """Tag one tokenised sentence."""

        model_config = _STRICT
        tokens: tokens_t
        model: model_t  # type: ignore[valid-type]

    class DocumentsRequest(BaseModel):
        """Tag several documents; results come back in request order."""

        model_config = _STRICT
        documents: documents_type(limits, document_t)  # type: ignore[valid-type]
        model: model_t  # type: ignore[valid-type]

    request_t = one_of(
        {"text": TextRequest, "tokens": TokensRequest, "documents": DocumentsRequest},
        "request_form",
        "the body is a JSON object with exactly one of text, tokens or documents",
    )
    adapter: TypeAdapter[Any] = TypeAdapter(request_t)
    models = (TextDocument, TokensDocument, TextRequest, TokensRequest, DocumentsRequest)
    return RequestSchema(
        adapter=adapter,
        models=models,
        forms=("text", "tokens", "documents"),
        document_forms=("text", "tokens"),
    )


# ---------------------------------------------------------------------------------------------
# Responses. Built as plain dicts on the hot path; these models document and test them.

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Offset = Annotated[int, Field(ge=0)]


class ModelRef(BaseModel):
    """Which model answered."""

    name: str
    version: str


class TokenOut(BaseModel):
    """One token: ``text == source[start:end]`` (code points)."""

    text: str
    start: Offset
    end: Offset
    label: str = Field(description="IOB2 tag with type, e.g. B-PER, I-PER, O.")
    is_name: Literal[0, 1] = Field(description="1 when the token is inside any entity.")
    score: Probability = Field(description="The CRF marginal probability of the label.")


class EntityOut(BaseModel):
    """One entity span: ``text == source[start:end]``, tokens ``token_start:token_end``."""

    text: str
    label: str
    start: Offset
    end: Offset
    token_start: Offset
    token_end: Offset
    score: Probability = Field(description="Probability of the span's tag sequence.")


class DocumentOut(BaseModel):
    """The tags of one document."""

    tokens: list[TokenOut]
    entities: list[EntityOut]


class TagResponse(DocumentOut):
    """Answer to a ``text`` or ``tokens`` request."""

    model: ModelRef


class BatchResponse(BaseModel):
    """Answer to a ``documents`` request, results in request order."""

    model: ModelRef
    results: list[DocumentOut]


class ModelInfo(BaseModel):
    """A loaded model: what its task's predictor describes, plus these fields."""

    model_config = ConfigDict(extra="allow")
    name: str
    task: str
    version: str
    state: Literal["loading", "ready", "stopped"]
    default: bool = Field(description="Whether it answers requests of its task without model.")
    card: dict[str, Any]


class ModelsResponse(BaseModel):
    """Every loaded model."""

    models: list[ModelInfo]


class HealthResponse(BaseModel):
    """Liveness."""

    status: Literal["ok"]


class ReadyResponse(BaseModel):
    """Readiness, with each model's state."""

    status: Literal["ready", "not ready"]
    models: dict[str, Literal["loading", "ready", "stopped"]]


class ErrorLimit(BaseModel):
    """The limit a request went over."""

    name: str
    value: int


class ErrorDetail(BaseModel):
    """What was wrong."""

    type: str
    message: str
    field: str | None = Field(default=None, description="Where in the body, e.g. documents.2.text")
    limit: ErrorLimit | None = None


class ErrorBody(BaseModel):
    """Every error response."""

    error: ErrorDetail
