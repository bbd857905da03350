"""YAML documents that remember where each value came from, so config errors can name a line.

:func:`load_document` (one document) and :func:`load_documents` (a ``---``
separated stream, as OpenSLO files are) parse with PyYAML's safe loader and
return :class:`Document` objects: the plain Python data plus, for every node,
the 1-based line it starts on, keyed by its path from the document root
(``("journeys", 2, "weight")``). A mapping entry's line is the line of its key.

A :class:`Document` turns problems found by validation (a path and a message)
into :class:`~casemesh.harness.errors.ConfigError` pointing at the closest
line that exists: the offending key, or for a missing key the mapping that
lacks it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from .errors import ConfigError

#: Where a value sits in a document: mapping keys and list indexes from the root.
Loc = tuple[str | int, ...]

_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a document: ``loc`` of the offending value and a human message."""

    loc: Loc
    message: str


def dotted(loc: Loc) -> str:
    """``("journeys", 2, "weight")`` as ``journeys[2].weight``; ``()`` as ``""``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def problems_from(error: ValidationError, relocate: Callable[[ErrorDetails], Problem] | None = None) -> list[Problem]:
    """Pydantic's errors as problems, missing keys last (a missing key is often a misspelt one reported first).

    ``relocate`` turns an error into a problem when pydantic's ``loc`` or
    ``msg`` need adjusting; by default they are taken as they are.
    """
    details = sorted(error.errors(include_url=False), key=lambda e: e["type"] == "missing")
    return [relocate(e) if relocate else Problem(tuple(e["loc"]), e["msg"]) for e in details]


@dataclass(frozen=True)
class Document:
    """One parsed YAML document.

    ``data`` is what ``yaml.safe_load`` would return; ``lines`` maps each
    node's path to its 1-based line; ``file`` is the path as the user gave it,
    used in errors.
    """

    data: Any
    lines: dict[Loc, int]
    file: str

    def line(self, loc: Loc) -> int | None:
        """Line of ``loc``, or of its closest ancestor that exists in the document."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(loc[:end])
            if line is not None:
                return line
        return None

    def error(self, problems: Sequence[Problem], *, field_prefix: str = "") -> ConfigError:
        """A :class:`ConfigError` for the first of ``problems`` (non-empty), counting the others.

        ``field_prefix`` goes before the dotted field (``"[2]"`` for the
        third document of a stream).
        """
        first = problems[0]
        field = dotted(first.loc)
        if field_prefix:
            field = f"{field_prefix}.{field}" if field else field_prefix
        more = len(problems) - 1
        message = first.message + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")
        return ConfigError(message, file=self.file, line=self.line(first.loc), field=field or None)


def load_document(path: Path, display_path: str | None = None) -> Document:
    """The single YAML document in ``path`` (``data=None`` when empty); ``ConfigError`` if unreadable, invalid or several."""
    documents = load_documents(path, display_path)
    shown = display_path or str(path)
    if len(documents) > 1:
        raise ConfigError("expected a single YAML document, found several separated by ---", file=shown, line=documents[1].line(()))
    return documents[0] if documents else Document(None, {}, shown)


def load_documents(path: Path, display_path: str | None = None) -> list[Document]:
    """Every non-empty document of the YAML stream in ``path``, in order.

    ``display_path`` (default ``str(path)``) names the file in errors. YAML
    syntax errors, duplicate keys and unreadable files raise ``ConfigError``.
    """
    shown = display_path or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", file=shown) from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"not UTF-8 text: {error.reason} at byte {error.start}", file=shown) from None
    except OSError as error:
        raise ConfigError(f"cannot read: {error.strerror}", file=shown) from None
    loader = yaml.SafeLoader(text)
    documents: list[Document] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            lines: dict[Loc, int] = {}
            _index(loader, node, (), lines, set(), shown)
            data = loader.construct_document(node)
            if data is not None:
                documents.append(Document(data, lines, shown))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        what = f"{error.context}: {error.problem}" if error.context else str(error.problem)
        raise ConfigError(f"invalid YAML: {what}", file=shown, line=mark.line + 1 if mark else None) from None
    except yaml.YAMLError as error:
        raise ConfigError(f"invalid YAML: {error}", file=shown) from None
    finally:
        loader.dispose()
    return documents


def _index(loader: yaml.SafeLoader, node: yaml.Node, loc: Loc, lines: dict[Loc, int], seen: set[int], file: str) -> None:
    """Record the line of ``node`` and of everything under it.

    Anchored nodes reached again through an alias are indexed once (their
    first path), which keeps alias bombs and recursive aliases cheap; later
    paths fall back to the alias's own line.
    """
    lines.setdefault(loc, node.start_mark.line + 1)
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(loader, item, (*loc, i), lines, seen, file)
    elif isinstance(node, yaml.MappingNode):
        keys: set[Any] = set()
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                continue
            key = loader.construct_object(key_node)
            if key in keys:
                raise ConfigError("duplicate key", file=file, line=key_node.start_mark.line + 1, field=dotted((*loc, key)))
            keys.add(key)
            lines[(*loc, key)] = key_node.start_mark.line + 1
            _index(loader, value_node, (*loc, key), lines, seen, file)
