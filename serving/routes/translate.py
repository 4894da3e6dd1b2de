"""POST /v1/translate (task ``seq2seq``): one text in, its translation out.

``{"text", "model"?, "beam_size"?, "n_best"?, "length_penalty"?}`` ->
``{"model", "translation", "score", "source_tokens", "output_tokens", "finished",
"alternatives"?, "attention"?, "unknown"?}``. ``score`` is the output's log-probability,
``</s>`` included; ``attention`` (models with attention) has one row per output token
(``output_tokens``, ``</s>`` included) and one column per input token (``source_tokens``: the
characters or words the model read), the labels of a heat map.

Greedy requests (``beam_size`` 1, the default) go through the model's micro-batcher with other
greedy requests; beam search runs one text at a time in the same inference thread, queued with
them under the same work budget (``MicroBatcher.call``: a text counts as one unit of work, a beam
search as ``beam_size``). The text passes the shared checks (``serving.requests``) and then the
model's own: its character cap, and for character models the characters it knows; each failure is
a 422 that says what is wrong. The output length is capped by the model, so a model that never
writes ``</s>`` still answers (``finished: false``).
"""

from __future__ import annotations

import functools
import math
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from ner.translate import MAX_BEAM, TranslationInputError
from serving.batcher import PredictFn
from serving.errors import ApiError, SafeJSONResponse
from serving.requests import RESPONSES, Endpoint, RequestRoute, accept, infer, run_call
from serving.schemas import ModelRef, RequestLimits, RequestSchema, model_type, text_type
from serving.settings import Settings

TASK = "seq2seq"
_STRICT = ConfigDict(strict=True, extra="forbid")


def build_translate_schema(settings: Settings, names: tuple[str, ...]) -> RequestSchema:
    """TranslateRequest: ``{"text"}`` with optional ``model``, ``beam_size``, ``n_best``,
    ``length_penalty``."""
    limits = RequestLimits.of(settings)
    text_t = text_type(
        limits,
        "Normalized by the model (dates: lowercased, commas removed); each model also has its "
        "own character cap (GET /v1/models: max_chars).",
    )

    class TranslateRequest(BaseModel):
        """Translate one text."""

        model_config = _STRICT
        text: text_t  # type: ignore[valid-type]
        model: model_type(names)  # type: ignore[valid-type]
        beam_size: int = Field(
            default=1, ge=1, le=MAX_BEAM, description="1: greedy search; more: beam search."
        )
        n_best: int = Field(
            default=1,
            ge=1,
            le=MAX_BEAM,
            description="Outputs to return (the best and n_best - 1 alternatives); "
            "at most beam_size.",
        )
        length_penalty: float = Field(
            default=0.0,
            ge=0.0,
            le=2.0,
            description="Beam ranking: log P / |y|^length_penalty (0: log P itself).",
        )

    return RequestSchema(
        adapter=TypeAdapter(TranslateRequest), models=(TranslateRequest,), forms=("text",)
    )


# work is counted in texts here, so the body's size says nothing about it (bytes_per_token 0)
ENDPOINTS = (
    Endpoint("/v1/translate", TASK, "TranslateRequest", build_translate_schema, bytes_per_token=0),
)
router = APIRouter(tags=["translation"], route_class=RequestRoute)


class Alternative(BaseModel):
    translation: str
    score: float = Field(description="log P(output, </s> | text)")


class TranslateResponse(BaseModel):
    """The best translation, its log-probability, the tokens and attention of a heat map."""

    model: ModelRef
    translation: str
    score: float = Field(description="log P(output, </s> | text)")
    source_tokens: list[str] = Field(description="The input as the model read it.")
    output_tokens: list[str] = Field(description="The output tokens, </s> included if written.")
    finished: bool = Field(description="False when the output hit the model's length cap.")
    alternatives: list[Alternative] | None = Field(
        default=None, description="The other n-best outputs, best first (n_best > 1)."
    )
    attention: list[list[Annotated[float, Field(ge=0.0, le=1.0)]]] | None = Field(
        default=None,
        description="Weights, output_tokens x source_tokens (models with attention).",
    )
    unknown: list[str] | None = Field(
        default=None, description="Input words outside the vocabulary (read as <unk>)."
    )


def batch_fn(predictor: Any) -> PredictFn:
    """The batcher's call: texts -> greedy ``Translation`` each (batched)."""

    def translate(items: list[str], batch_size: int) -> list[Any]:
        return predictor.translate(items, batch_size=batch_size)

    return translate


def _finite(value: float) -> float:
    return value if math.isfinite(value) else -1e30


def _response(result: Any, ref: dict[str, str]) -> dict[str, Any]:
    out = result.to_dict()
    out["score"] = _finite(float(out["score"]))
    for alt in out.get("alternatives", ()):
        alt["score"] = _finite(float(alt["score"]))
    return {"model": ref, **out}


@router.post(
    "/v1/translate",
    summary="Translate a text",
    response_model=TranslateResponse,
    response_model_exclude_none=True,
    responses=RESPONSES,
    openapi_extra=ENDPOINTS[0].openapi_extra,
)
async def translate(request: Request) -> SafeJSONResponse:
    """Translate `{"text"}` (dates to ISO 8601, English to French, ...), greedy by default.

    With `beam_size` > 1, beam search; `n_best` outputs come back, the best first and the others
    in `alternatives`.
    """
    async with accept(request, ENDPOINTS[0]) as req:
        p = req.parsed
        predictor = req.model.predictor
        try:
            predictor.check_search(p.beam_size, p.n_best, p.length_penalty)
            predictor.source_tokens(p.text)
        except TranslationInputError as e:
            kind = "limit_exceeded" if e.limit else "invalid_request"
            if e.field == "text" and not e.limit:
                kind = "invalid_text"
            raise ApiError(422, kind, str(e), field=e.field, limit=e.limit) from None
        req.admit(p.beam_size)  # the greedy batcher counts one unit of work per text
    if p.beam_size == 1 and p.n_best == 1:
        (result,) = await infer(req, [p.text])
    else:
        search = functools.partial(
            predictor.translate,
            [p.text],
            beam_size=p.beam_size,
            n_best=p.n_best,
            length_penalty=p.length_penalty,
        )
        (result,) = await run_call(req, search)
    return SafeJSONResponse(_response(result, req.model_ref))
