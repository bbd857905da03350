"""The search engine contract's rules that clients and servers both apply (part of the contract:
protos/casemesh/search/v1/{search,shard,indexer,query}.proto).

Seeds: 000 "Search Engine (like Google)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 592-664: "Query processing:
Millions of QPS, sub-500ms latency", the inverted index example, the PageRank algorithm) and 001 #10
(shared/seeds/001_58dfc580020147d2.txt line 27: "| 10 | Search Engine | Inverted index, PageRank, query processing,
autocomplete | 10B documents, Google-scale |"). Imported by the search services, by the crawler (a client of the
indexer) and by the search workload, and by nothing else of either side; a client in another language applies the same
rules, which the protos quote in their field comments.

- URLs (pages, outlinks): ``http://`` or ``https://``, a host, an optional path; 1 to :data:`MAX_URL_CHARS`
  characters, no whitespace or control characters (:func:`is_page_url`).
- Pages: a title of at most :data:`MAX_TITLE_CHARS` characters, a body of at most :data:`MAX_BODY_CHARS`, at most
  :data:`MAX_OUTLINKS` outlinks.
- Queries: 1 to :data:`MAX_QUERY_CHARS` characters; 1 to :data:`MAX_QUERY_TERMS` distinct terms after analysis; at
  most :data:`MAX_PHRASES` phrases of 2 to :data:`MAX_PHRASE_TERMS` terms. Pages of 0 to :data:`MAX_PAGE_SIZE`
  results (0: :data:`DEFAULT_PAGE_SIZE`), never past the :data:`MAX_RESULTS`-th result.
- Autocomplete: a prefix of 1 to :data:`MAX_PREFIX_CHARS` characters after :func:`normalize_query`; 0 to
  :data:`MAX_SUGGESTIONS` suggestions (0: :data:`DEFAULT_SUGGESTIONS`).
- Shards: a page lives on shard :func:`shard_of` ``(url, shard_count)``, ``crc32(url) mod shard_count``, with 1 to
  :data:`MAX_SHARDS` shards.
"""

from __future__ import annotations

import re
import zlib

__all__ = [
    "DEFAULT_PAGE_SIZE", "DEFAULT_SUGGESTIONS", "MAX_BODY_CHARS", "MAX_OUTLINKS", "MAX_PAGE_SIZE", "MAX_PHRASES",
    "MAX_PHRASE_TERMS", "MAX_PREFIX_CHARS", "MAX_QUERY_CHARS", "MAX_QUERY_TERMS", "MAX_RESULTS", "MAX_SHARDS",
    "MAX_SUGGESTIONS", "MAX_TERM_BYTES", "MAX_TITLE_CHARS", "MAX_URL_CHARS", "is_page_url", "normalize_query",
    "shard_of",
]

MAX_URL_CHARS = 2_048
MAX_TITLE_CHARS = 512
MAX_BODY_CHARS = 200_000
MAX_OUTLINKS = 500
MAX_QUERY_CHARS = 512
MAX_QUERY_TERMS = 16
MAX_PHRASES = 4
MAX_PHRASE_TERMS = 16
#: Tokens longer than this many UTF-8 bytes are dropped by the analysis (tantivy's RemoveLongFilter default is 40).
MAX_TERM_BYTES = 40
MAX_PAGE_SIZE = 50
DEFAULT_PAGE_SIZE = 10
#: Results beyond this rank are not served (Google stops near the same depth).
MAX_RESULTS = 1_000
MAX_PREFIX_CHARS = 32
MAX_SUGGESTIONS = 10
DEFAULT_SUGGESTIONS = 5
MAX_SHARDS = 64

_URL_RE = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[^\s\x00-\x1f\x7f]*)?$")
_SPACES_RE = re.compile(r"\s+")


def is_page_url(url: str) -> bool:
    """True for an http(s) URL of 1 to :data:`MAX_URL_CHARS` characters: scheme, host, optional port and path."""
    return 0 < len(url) <= MAX_URL_CHARS and _URL_RE.match(url) is not None


def shard_of(url: str, shard_count: int) -> int:
    """The shard (0 to ``shard_count`` - 1) that holds ``url``: CRC-32 of its UTF-8 bytes modulo ``shard_count``.

    Raises ``ValueError`` when ``shard_count`` is not 1 to :data:`MAX_SHARDS`.
    """
    if not 1 <= shard_count <= MAX_SHARDS:
        raise ValueError(f"shard_count must be 1 to {MAX_SHARDS}, got {shard_count}")
    return zlib.crc32(url.encode("utf-8")) % shard_count


def normalize_query(text: str) -> str:
    """A query or prefix as the query log and autocomplete key it: lower case, runs of whitespace as one space, no
    leading whitespace. Trailing whitespace stays as one space, so the prefix "new " completes to "new york" and not
    to "newton"; the query log strips it from the queries it counts."""
    return _SPACES_RE.sub(" ", text.lower()).lstrip()
