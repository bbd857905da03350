"""Text analysis, the same for pages and queries (protos/casemesh/search/v1/search.proto, "Text analysis").

tantivy's analyzer chain (the Rust full-text engine the video search also uses): the simple tokenizer (runs of
letters and digits), tokens of more than :data:`~.contract.MAX_TERM_BYTES` UTF-8 bytes dropped (RemoveLongFilter),
lower-cased; no stemming and no stop words, so a phrase query matches the words as written. A token's position is its
index in the analysed sequence, as in tantivy's postings. The indexer, the shards and the query processor all analyse
through :func:`analyze`, so a query term and a page term always compare equal.
"""

from __future__ import annotations

import tantivy

from .contract import MAX_TERM_BYTES

__all__ = ["analyze"]

_ANALYZER = (tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
             .filter(tantivy.Filter.remove_long(MAX_TERM_BYTES + 1))
             .filter(tantivy.Filter.lowercase())
             .build())


def analyze(text: str) -> list[str]:
    """The terms of ``text`` in order (the list index is the term's position); empty for text without a word."""
    return _ANALYZER.analyze(text)
