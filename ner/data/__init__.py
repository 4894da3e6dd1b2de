"""The data layer: CoNLL column files, tag schemes, vocabularies and GloVe vectors.

The tokenizer lives in :mod:`ner.data.tokenize` (import it from there).
"""

from __future__ import annotations

from ner.data.conll import (
    DOCSTART,
    ConllFormatError,
    DocStart,
    Sentence,
    is_valid_label,
    iter_conll,
    read_conll,
    write_conll,
)
from ner.data.glove import (
    GloVe,
    GloVeChecksumError,
    GloVeNotInstalledError,
    glove_files,
    glove_sha256,
    load_glove,
    verify_sha256,
)
from ner.data.schemes import (
    BINARY_LABEL,
    SCHEMES,
    Scheme,
    Span,
    convert,
    is_valid,
    label_names,
    parse_tag,
    repair,
    spans_from_tags,
    tags_from_spans,
    to_binary,
)
from ner.data.vocab import CASING_NAMES, CASINGS, PAD, UNK, Casing, Vocab, casing_id, char_vocab

__all__ = [
    "BINARY_LABEL",
    "CASINGS",
    "CASING_NAMES",
    "DOCSTART",
    "PAD",
    "SCHEMES",
    "UNK",
    "Casing",
    "ConllFormatError",
    "DocStart",
    "GloVe",
    "GloVeChecksumError",
    "GloVeNotInstalledError",
    "Scheme",
    "Sentence",
    "Span",
    "Vocab",
    "casing_id",
    "char_vocab",
    "convert",
    "glove_files",
    "glove_sha256",
    "is_valid",
    "is_valid_label",
    "iter_conll",
    "label_names",
    "load_glove",
    "parse_tag",
    "read_conll",
    "repair",
    "spans_from_tags",
    "tags_from_spans",
    "to_binary",
    "verify_sha256",
    "write_conll",
]
