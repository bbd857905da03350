"""A synthetic web page rendered as the HTML a web server sends (protos/casemesh/crawler/v1/web.proto, FetchResponse:
"HTML for a page: a <title>, the text, <a href> links, absolute or relative"), seed 001 #28
(shared/seeds/001_58dfc580020147d2.txt line 34: "Web Crawler").

The text is split into paragraphs of :data:`PARAGRAPH_WORDS` words; the links follow it in a ``<nav>``. Everything is
escaped (``html.escape``), and a page's HTML depends only on its :class:`~.generator.Page`, so an exact copy's bytes
equal its original's.
"""

from __future__ import annotations

from html import escape

from .generator import Page

__all__ = ["HTML_CONTENT_TYPE", "PARAGRAPH_WORDS", "TEXT_CONTENT_TYPE", "render"]

HTML_CONTENT_TYPE = "text/html; charset=utf-8"
TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"
PARAGRAPH_WORDS = 50


def render(page: Page) -> bytes:
    """``page`` as UTF-8 HTML: ``<title>``, ``<p>`` paragraphs of its text, then its ``<a href>`` links."""
    words = page.words
    paragraphs = "\n".join(f"<p>{escape(' '.join(words[i:i + PARAGRAPH_WORDS]))}</p>"
                           for i in range(0, len(words), PARAGRAPH_WORDS))
    links = "\n".join(f'<a href="{escape(link.href)}">{escape(link.text)}</a>' for link in page.links)
    title = escape(page.title)
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body>\n"
            f"{paragraphs}\n<nav>\n{links}\n</nav>\n</body></html>\n").encode()
