"""SearchProducts' query → an SQLite FTS5 MATCH expression that is always valid FTS5 and never user syntax.

Seed 000 "E-commerce Platform (like Amazon)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 502 and 519: "Product
catalog with search and filtering", "Product Service: Catalog, search (Elasticsearch)"). The contract
(protos/casemesh/ecommerce/v1/catalog.proto, SearchProductsRequest.query): a product matches when its title or
description holds **every word** of the query, the **last word as a prefix** (search as you type), case-insensitively.

A word is a run of letters and digits (:func:`words`): the characters the FTS5 ``unicode61`` tokenizer keeps as token
characters (Unicode letters and numbers, https://sqlite.org/fts5.html#unicode61_tokenizer); everything else
(spaces, punctuation, ``_``, combining marks) separates words, as it separates the tokenizer's tokens. Case and
diacritics are folded by the tokenizer itself (``remove_diacritics 2``), on the index and the query alike.

:func:`match_expression` quotes each word as an FTS5 string (``"word"``, a quote inside doubled; FTS5's "strings"
syntax, https://sqlite.org/fts5.html#fts5_strings) and joins them with ``AND``, the last one followed by ``*`` (a
prefix query). The user's text is never FTS5 syntax: ``AND``, ``NEAR``, ``*``, ``"``, ``^`` or ``title:`` in a query
are words or separators, never operators, so no query can make the MATCH fail. A query without any word is
refused by validation (INVALID_ARGUMENT naming ``query``), so the expression is never empty.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# Letters and digits in the sense of str.isalnum (Unicode L* and N*): \w without the underscore.
_WORD = re.compile(r"[^\W_]+")


def words(query: str) -> list[str]:
    """The words of ``query``, in order: its runs of Unicode letters and digits (``"Wi-Fi 6E router"`` →
    ``["Wi", "Fi", "6E", "router"]``)."""
    return _WORD.findall(query)


def _quoted(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def match_expression(query_words: Sequence[str]) -> str:
    """The FTS5 MATCH expression of ``query_words`` (at least one): every word, the last as a prefix
    (``["usb", "cab"]`` → ``"usb" AND "cab"*``). ``ValueError`` for no words."""
    if not query_words:
        raise ValueError("a search needs at least one word")
    quoted = [_quoted(word) for word in query_words]
    quoted[-1] += "*"
    return " AND ".join(quoted)
