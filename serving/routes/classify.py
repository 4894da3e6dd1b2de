"""POST /v1/classify (task ``classify``): one label per text, with the probability of each label.

A raw text is classified as one item, whatever its length: the server lowercases and tokenises
it with the model's own tokenizer (``Classifier.tokenize``, the PTB-style tokenisation of the
training data), so send the text as a person wrote it. Caps, characters and errors are the same
as /v1/tag's (``serving.requests``); the request schema is ``components/schemas/ClassifyRequest``.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from serving.batcher import PredictFn
from serving.requests import RESPONSES, Endpoint, RequestRoute, accept, estimate_tokens, infer
from serving.schemas import (
    ModelRef,
    RequestLimits,
    RequestSchema,
    documents_type,
    model_type,
    one_of,
    text_type,
)
from serving.settings import Settings

TASK = "classify"
_STRICT = ConfigDict(strict=True, extra="forbid")


def build_classify_schema(settings: Settings, names: tuple[str, ...]) -> RequestSchema:
    """ClassifyRequest: ``{"text"}`` or ``{"documents": [{"text"}, ...]}``, optional ``model``."""
    limits = RequestLimits.of(settings)
    text_t = text_type(
        limits, "Classified as one item: lowercased and tokenised by the model's tokenizer."
    )
    model_t = model_type(names)

    class ClassifyDocument(BaseModel):
        """A raw text to classify."""

        model_config = _STRICT
        text: text_t  # type: ignore[valid-type]

    class ClassifyTextRequest(BaseModel):
        """Classify one raw text."""

        model_config = _STRICT
        text: text_t  # type: ignore[valid-type]
        model: model_t  # type: ignore[valid-type]

    class ClassifyDocumentsRequest(BaseModel):
        """Classify several texts; results come back in request order."""

        model_config = _STRICT
        documents: documents_type(limits, ClassifyDocument)  # type: ignore[valid-type]
        model: model_t  # type: ignore[valid-type]

    request_t = one_of(
        {"text": ClassifyTextRequest, "documents": ClassifyDocumentsRequest},
        "request_form",
        "the body is a JSON object with exactly one of text or documents",
    )
    return RequestSchema(
        adapter=TypeAdapter(request_t),
        models=(ClassifyDocument, ClassifyTextRequest, ClassifyDocumentsRequest),
        forms=("text", "documents"),
        document_forms=("text",),
    )


ENDPOINTS = (Endpoint("/v1/classify", TASK, "ClassifyRequest", build_classify_schema),)
router = APIRouter(tags=["classification"], route_class=RequestRoute)


# Responses (built as plain dicts; these models document and test them)

Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class ClassOut(BaseModel):
    """The label of one text."""

    label: str = Field(description="The most probable label.")
    probabilities: dict[str, Probability] = Field(description="Every label's probability.")


class ClassifyResponse(ClassOut):
    """Answer to a ``text`` request."""

    model: ModelRef


class ClassifyBatchResponse(BaseModel):
    """Answer to a ``documents`` request, results in request order."""

    model: ModelRef
    results: list[ClassOut]


def batch_fn(predictor: Any) -> PredictFn:
    """The batcher's call: token lists of texts -> one ``ClassResult`` each."""

    def classify(items: list[list[str]], batch_size: int) -> list[Any]:
        return predictor.classify(items, batch_size=batch_size)

    return classify


def _probability(value: Any) -> float:
    p = float(value)
    return 0.0 if math.isnan(p) else min(1.0, max(0.0, p))


def _result(result: Any) -> dict[str, Any]:
    probabilities = {str(k): _probability(v) for k, v in result.probabilities.items()}
    return {"label": str(result.label), "probabilities": probabilities}


@router.post(
    "/v1/classify",
    summary="Classify texts",
    response_model=ClassifyResponse | ClassifyBatchResponse,
    responses=RESPONSES,
    openapi_extra=ENDPOINTS[0].openapi_extra,
)
async def classify(request: Request) -> Response:
    """Classify `{"text"}` or `{"documents": [{"text"}, ...]}`, optionally with a `model` name.

    One text gets `{"model", "label", "probabilities"}`; a batch gets `{"model", "results"}` in
    request order. Each text is lowercased and tokenised by the model's tokenizer first.
    """
    async with accept(request, ENDPOINTS[0]) as req:
        documents = getattr(req.parsed, "documents", None)
        texts = [req.parsed.text] if documents is None else [d.text for d in documents]
        req.admit(estimate_tokens(texts))
        tokenize = req.model.predictor.tokenize
        items = await req.off_loop(lambda: [tokenize(text) for text in texts])
    results = [_result(r) for r in await infer(req, items)]
    ref = req.model_ref
    if documents is not None:
        return await req.respond({"model": ref, "results": results})
    return await req.respond({"model": ref, **results[0]})
