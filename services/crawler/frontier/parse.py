"""A fetched page's title, visible text and links (stdlib ``html.parser``), and the URL normalisation the frontier's
seen set keys by.

Seed 001 #28 (shared/seeds/001_58dfc580020147d2.txt line 34: "Web Crawler | URL frontier, robots.txt, politeness,
deduplication (MD5/Simhash), BFS"). Links are resolved against the page's URL (``urllib.parse.urljoin``, so
relative links work, ``<base href>`` included), their fragments dropped (``#section`` names a part of the same page),
and kept only when the normalised URL is one the synthetic web can answer (``contract.is_web_url``: ``http://``, a
lower-case host without a port, a path). Text inside ``<script>``, ``<style>``, ``<noscript>`` and ``<template>`` is
not visible and is left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin, urlsplit

from ..contract import is_web_url

#: Elements whose text a browser does not show.
_HIDDEN = frozenset({"script", "style", "noscript", "template"})
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class ParsedPage:
    """A page as the crawler uses it: ``title`` and ``text`` with runs of whitespace as one space; ``links`` the
    normalised crawlable URLs it links to, in page order, repeats dropped."""

    title: str
    text: str
    links: tuple[str, ...]


def normalize_url(url: str) -> str | None:
    """``url`` as the seen set keys it: no fragment, scheme and host lower-case, port 80 dropped, an empty path as
    ``/``; ``None`` when the result is not a URL of the synthetic web (``contract.is_web_url``: other schemes, other
    ports, spaces, over 2,048 characters)."""
    url = urldefrag(url.strip()).url
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a malformed port or IPv6 literal
        return None
    if parts.scheme.lower() != "http" or not parts.hostname or port not in (None, 80):
        return None
    normalised = f"http://{parts.hostname.lower()}{parts.path or '/'}{'?' + parts.query if parts.query else ''}"
    return normalised if is_web_url(normalised) else None


def parse_page(url: str, html: str) -> ParsedPage:
    """The title, visible text and links of the HTML page fetched from ``url`` (absolute, the base of relative
    links). Never raises on malformed HTML: ``html.parser`` is lenient."""
    parser = _PageParser(url)
    parser.feed(html)
    parser.close()
    return ParsedPage(title=_SPACES.sub(" ", " ".join(parser.title)).strip(),
                      text=_SPACES.sub(" ", " ".join(parser.text)).strip(),
                      links=tuple(parser.links))


class _PageParser(HTMLParser):
    def __init__(self, url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base = url
        self.title: list[str] = []
        self.text: list[str] = []
        self.links: dict[str, None] = {}  # ordered set
        self._hidden = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self._hidden += 1
        elif tag == "title":
            self._in_title = True
        elif tag in ("a", "base"):
            href = dict(attrs).get("href")
            if not href:
                return
            if tag == "base":
                self.base = urljoin(self.base, href)
                return
            try:
                link = normalize_url(urljoin(self.base, href))
            except ValueError:
                return
            if link is not None:
                self.links[link] = None

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        (self.title if self._in_title else self.text).append(data)
