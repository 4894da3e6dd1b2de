"""POST /v1/tag (task ``ner``): tag a text, a tokenised sentence, or a batch of documents.

Texts are split into sentences here (``serving.tagging``), so that the micro-batcher packs
sentences from many requests into one predictor call. Body reading, model choice and errors are
``serving.requests``'; the request schema is published as ``components/schemas/TagRequest``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from serving.batcher import PredictFn
from serving.requests import RESPONSES, Endpoint, RequestRoute, accept, estimate_tokens, infer
from serving.schemas import (
    BatchResponse,
    RequestLimits,
    RequestSchema,
    TagResponse,
    build_request_schema,
)
from serving.settings import Settings
from serving.tagging import DocumentPlan, assemble, plan_text, plan_tokens

TASK = "ner"


def _schema(settings: Settings, names: tuple[str, ...]) -> RequestSchema:
    return build_request_schema(RequestLimits.of(settings), names)


ENDPOINTS = (Endpoint("/v1/tag", TASK, "TagRequest", _schema),)
router = APIRouter(tags=["tagging"], route_class=RequestRoute)


def batch_fn(predictor: Any) -> PredictFn:
    """The batcher's call: token lists of sentences -> one ``ner.predict.SentenceTags`` each.

    ``Predictor.tag`` takes the words as they are: the texts were tokenised once, here, and
    their offsets stay in the plans (``predict`` would join and tokenise the words again and
    build result objects that the answer does not use).
    """

    def predict(sentences: list[list[str]], batch_size: int) -> list[Any]:
        return predictor.tag(sentences, batch_size=batch_size)

    return predict


def warmup() -> None:
    """Split a text once: the tokenizer compiles its character classes on first use (~1.5 s)."""
    plan_text("Dr. Smith met Ms. Jones in St. Louis. They talked.", 16)


def _estimate(parsed: Any) -> int:
    """Tokens of a validated request, at least (words of texts, given tokens)."""
    documents = getattr(parsed, "documents", None)
    items = [parsed] if documents is None else documents
    texts = [item.text for item in items if hasattr(item, "text")]
    return estimate_tokens(texts) + sum(len(i.tokens) for i in items if hasattr(i, "tokens"))


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
    openapi_extra=ENDPOINTS[0].openapi_extra,
)
async def tag(request: Request) -> Response:
    """Tag `{"text"}`, `{"tokens"}` or `{"documents": [...]}`, optionally with a `model` name.

    A single document gets `{"model", "tokens", "entities"}`; a batch gets `{"model", "results"}`
    in request order. Offsets are code-point indices into the text (for tokens: the tokens
    joined by single spaces), so that `text[start:end] == token.text`.
    """
    async with accept(request, ENDPOINTS[0]) as req:
        req.admit(_estimate(req.parsed))
        plans, batch = await req.off_loop(_plans, req.parsed, req.settings.max_tokens)
        sentences = [s for plan in plans for s in plan.sentences()]
    tagged = await infer(req, sentences)
    documents = await req.off_loop(_documents, plans, tagged, answer=True)
    ref = req.model_ref
    body = {"model": ref, "results": documents} if batch else {"model": ref, **documents[0]}
    return await req.respond(body)


def _documents(plans: list[DocumentPlan], tagged: list[Any]) -> list[dict[str, Any]]:
    """The answer for each document from its windows' tags."""
    documents = []
    offset = 0
    for plan in plans:
        n = len(plan.windows)
        documents.append(assemble(plan, tagged[offset : offset + n]))
        offset += n
    return documents
