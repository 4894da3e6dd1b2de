"""POST /v1/score and POST /v1/generate (tasks ``language_model`` and ``conditional_lm``).

``/v1/score`` returns log P(y<1>, ..., y<Ty>) of a text under a language model (natural log,
<EOS> included), its perplexity and every token's share; ``/v1/generate`` samples ``n`` texts as
one batch (temperature, top-k, top-p, a prefix, a seed; <EOS> or ``max_length`` ends a sample).
A conditional model (one-to-many) takes the ``class`` to generate from; a plain language model
refuses one. Both loops run in NumPy around the model's one-step ONNX graph
(``ner.generate``), in the server's inference thread, queued with the model's other work under
its work budget: a request is counted as the tokens it scores (the text's, and <EOS>) or may
generate (``n`` x ``max_length``, and the prefix), refused with 503 + Retry-After when the
budget is used up, and dropped unrun when its client leaves or its deadline
(``request_timeout_s``) passes. Both are micro-batched across requests (``batch_fn``), as the
tagger's sentences are: texts to score as one padded batch, each row with its own class, and
generate requests as one sampling loop (``LanguageModelPredictor.generate_checked``) whose
every step is one run for all their rows; each request keeps its own settings, class and
random stream seeded by the request, so its samples are those it would get alone. A call of
the batcher may hold both kinds: they are split, and each result goes back in its item's place.

Errors: what the schema states (caps on ``n``, ``max_length``, ``text``; ``temperature`` > 0;
``top_k`` >= 1; ``top_p`` in (0, 1]) is a 422 from the schema check; what depends on the model
(characters it has never seen, a class it does not know, a text with no tokens) is a 422 naming
the field.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter
from pydantic_core import PydanticCustomError

from ner.data.lm import detokenize
from ner.generate import MAX_LENGTH, MAX_SAMPLES, GenerationError, SampleRequest
from serving.batcher import PredictFn
from serving.errors import ApiError, SafeJSONResponse
from serving.requests import (
    RESPONSES,
    Endpoint,
    RequestRoute,
    accept,
    estimate_tokens,
    infer,
)
from serving.schemas import ModelRef, RequestLimits, RequestSchema, model_type, text_type
from serving.settings import Settings

TASKS = ("language_model", "conditional_lm")
_STRICT = ConfigDict(strict=True, extra="forbid", populate_by_name=False)
_CONTROL = r"\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f"
_BAD_CHAR = re.compile(f"[{_CONTROL}\ud800-\udfff]")
MAX_SEED = 2**63 - 1


def _check_prefix(value: str) -> str:
    bad = _BAD_CHAR.search(value)
    if bad is not None:
        raise PydanticCustomError(
            "invalid_character",
            "contains U+{cp:04X} at index {index} (a control character or lone surrogate)",
            {"cp": ord(bad.group()), "index": bad.start()},
        )
    return value


def _class_type() -> Any:
    return Annotated[
        str | int | None,
        Field(
            default=None,
            alias="class",
            description="A conditional model's class: its name (e.g. negative, positive) or id "
            "(GET /v1/models lists a model's classes). Refused by a plain language model.",
        ),
    ]


def build_score_schema(settings: Settings, names: tuple[str, ...]) -> RequestSchema:
    """ScoreRequest: ``{"text", "model"?, "class"?}``."""
    limits = RequestLimits.of(settings)
    text_t = text_type(limits, "Tokenised as the model was trained (characters or words).")
    model_t, class_t = model_type(names), _class_type()

    class ScoreRequest(BaseModel):
        """Score one text: log P(y<1>..y<Ty>, <EOS>) under the model."""

        model_config = _STRICT
        text: text_t  # type: ignore[valid-type]
        model: model_t  # type: ignore[valid-type]
        class_: class_t  # type: ignore[valid-type]

    return RequestSchema(adapter=TypeAdapter(ScoreRequest), models=(ScoreRequest,))


def build_generate_schema(settings: Settings, names: tuple[str, ...]) -> RequestSchema:
    """GenerateRequest: sampling settings, all optional."""
    limits = RequestLimits.of(settings)
    prefix_t = Annotated[
        str,
        Field(
            max_length=limits.max_chars,
            description="Text every sample starts with (fed through the model first); "
            "characters a character model has never seen are refused.",
            json_schema_extra={"pattern": f"^[^{_CONTROL}]*$"},
        ),
        AfterValidator(_check_prefix),
    ]
    model_t, class_t = model_type(names), _class_type()

    class GenerateRequest(BaseModel):
        """Sample novel sequences: draw y<t> from the softmax, feed it back as x<t+1>, stop at
        <EOS> or max_length."""

        model_config = _STRICT
        model: model_t  # type: ignore[valid-type]
        n: int = Field(default=1, ge=1, le=MAX_SAMPLES, description="Samples, drawn as one batch.")
        temperature: float = Field(
            default=1.0,
            gt=0,
            le=100,
            allow_inf_nan=False,
            description="The logits are divided by it; near 0 approaches greedy decoding.",
        )
        top_k: int | None = Field(
            default=None, ge=1, description="Sample among the k most likely tokens (1: greedy)."
        )
        top_p: float = Field(
            default=1.0,
            gt=0,
            le=1,
            allow_inf_nan=False,
            description="Nucleus sampling: the smallest set of tokens with this much mass.",
        )
        prefix: prefix_t = ""  # type: ignore[valid-type]
        seed: int | None = Field(
            default=None,
            ge=0,
            le=MAX_SEED,
            description="The same seed gives the same samples; omitted: a random seed, "
            "returned in the response.",
        )
        max_length: int | None = Field(
            default=None,
            ge=1,
            le=MAX_LENGTH,
            description="Most tokens a sample grows by (omitted: the model's default).",
        )
        allow_unk: bool = Field(default=False, description="Let <unk> be sampled.")
        class_: class_t  # type: ignore[valid-type]

    return RequestSchema(adapter=TypeAdapter(GenerateRequest), models=(GenerateRequest,))


ENDPOINTS = (
    Endpoint("/v1/score", TASKS[0], "ScoreRequest", build_score_schema, also=TASKS[1:]),
    Endpoint(
        "/v1/generate",
        TASKS[0],
        "GenerateRequest",
        build_generate_schema,
        also=TASKS[1:],
        bytes_per_token=0,  # the work is n x max_length, whatever the body's size
    ),
)
router = APIRouter(tags=["language models"], route_class=RequestRoute)


# Responses (built as plain dicts; these models document and test them)


class TokenLogProb(BaseModel):
    text: str = Field(description="The token (<eos> for the end of the sequence).")
    log_prob: float = Field(description="log P(y<t> | y<1..t-1>), natural log.")


class ScoreResponse(BaseModel):
    model: ModelRef
    log_prob: float = Field(description="log P of the text and <EOS>: the tokens' sum.")
    perplexity: float = Field(description="exp(-log_prob / number of tokens, <EOS> included).")
    tokens: list[TokenLogProb]


class GenerateResponse(BaseModel):
    model: ModelRef
    seed: int = Field(description="The seed the samples were drawn with.")
    samples: list[str]


ScoreItem = tuple[list[str], int | None]
"""A text to score, checked: its tokens and its class id (None for a plain model)."""


def batch_fn(predictor: Any) -> PredictFn:
    """The batcher's call for these models: the items of any number of ``/v1/score`` and
    ``/v1/generate`` requests, mixed -> one result each, in the items' order. ``ScoreItem``s
    -> a ``ner.generate.Score`` each, in one padded batch; ``SampleRequest``s -> each its
    samples' tokens, in one sampling loop (each step of the language model is one ONNX run for
    all of a kind, as the tagger's sentences share one)."""

    def run(items: list[ScoreItem | SampleRequest], batch_size: int) -> list[Any]:
        scored = [i for i, item in enumerate(items) if not isinstance(item, SampleRequest)]
        sampled = [i for i, item in enumerate(items) if isinstance(item, SampleRequest)]
        results: list[Any] = [None] * len(items)
        if scored:
            texts: list[Any] = [items[i] for i in scored]
            scores = predictor.score_checked([t for t, _ in texts], [c for _, c in texts])
            for i, result in zip(scored, scores, strict=True):
                results[i] = result
        if sampled:
            samples = predictor.generate_checked([items[i] for i in sampled])
            for i, result in zip(sampled, samples, strict=True):
                results[i] = result
        return results

    return run


def score_item(predictor: Any, text: str, class_: str | int | None) -> ScoreItem:
    """Tokenise and check a text to score (``score_tokens``' checks, in its order), so that a
    bad text is refused by itself instead of failing the batch it would share."""
    class_id = predictor.class_id(class_)
    tokens = predictor.tokenize(text)
    predictor.check_scorable(tokens)
    return tokens, class_id


def _text_cost(predictor: Any, text: str) -> int:
    """Tokens a text is read as: its characters, or for a word model about its words."""
    return len(text) if predictor.level == "char" else estimate_tokens([text])


@contextmanager
def _field_errors() -> Iterator[None]:
    """A ``GenerationError`` (a class or text the model cannot take) as a 422."""
    try:
        yield
    except GenerationError as e:
        kind = "invalid_class" if e.field == "class" else "invalid_request"
        raise ApiError(422, kind, str(e), field=e.field) from None


@router.post(
    "/v1/score",
    summary="Score a text with a language model",
    response_model=ScoreResponse,
    responses=RESPONSES,
    openapi_extra=ENDPOINTS[0].openapi_extra,
)
async def score(request: Request) -> SafeJSONResponse:
    """`{"text", "model"?, "class"?}` -> `{"model", "log_prob", "perplexity", "tokens"}`.

    P(y<1>, ..., y<Ty>) = Π P(y<t> | y<1..t-1>), <EOS> included; the tokens' `log_prob`s sum to
    the total. Words a word model does not know are scored as <unk>.
    """
    async with accept(request, ENDPOINTS[0]) as req:
        parsed = req.parsed
        predictor = req.model.predictor
        cost = _text_cost(predictor, parsed.text) + 1  # <EOS>
        req.admit(cost)
        with _field_errors():
            item = await req.off_loop(score_item, predictor, parsed.text, parsed.class_)
    # batched with other requests' texts (``batch_fn``), admitted and dropped as before
    (result,) = await infer(req, [item], costs=[cost])
    return SafeJSONResponse({"model": req.model_ref, **result.to_dict()})


@router.post(
    "/v1/generate",
    summary="Sample texts from a language model",
    response_model=GenerateResponse,
    responses=RESPONSES,
    openapi_extra=ENDPOINTS[1].openapi_extra,
)
async def generate(request: Request) -> SafeJSONResponse:
    """Sample `n` texts as one batch -> `{"model", "seed", "samples"}`.

    Each sample is `prefix` plus sampled tokens up to <EOS> or `max_length`; <unk> is never drawn
    unless `allow_unk`. A conditional model needs `class`; a plain one refuses it.
    """
    async with accept(request, ENDPOINTS[1]) as req:
        p = req.parsed
        predictor = req.model.predictor
        length = predictor.default_length if p.max_length is None else p.max_length
        cost = p.n * length + _text_cost(predictor, p.prefix)
        req.admit(cost)
        seed = p.seed if p.seed is not None else secrets.randbelow(MAX_SEED)
        prepare = partial(
            predictor.prepare_sample,
            p.n,
            temperature=p.temperature,
            top_k=p.top_k,
            top_p=p.top_p,
            prefix=p.prefix,
            seed=seed,
            max_length=p.max_length,
            allow_unk=p.allow_unk,
            class_=p.class_,
        )
        with _field_errors():  # checked here, so that a bad request fails no shared batch
            item = await req.off_loop(prepare)
    # its rows share each sampling step with other requests' (``batch_fn``), its own seed kept
    (tokens,) = await infer(req, [item], costs=[cost])
    samples = [detokenize(predictor.tokenizer, t) for t in tokens]
    return SafeJSONResponse({"model": req.model_ref, "seed": seed, "samples": samples})
