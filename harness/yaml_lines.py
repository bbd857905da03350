"""YAML documents that remember where each value came from, so config errors can name a line.

:func:`load_document` (one document) and :func:`load_documents` (a ``---``
separated stream, as OpenSLO files are) parse with PyYAML's safe loader and
return :class:`Document` objects: the plain Python data plus, for every node,
the 1-based line it starts on, keyed by its path from the document root
(``("journeys", 2, "weight")``). A mapping entry's line is the line of its key.

A :class:`Document` turns problems found by validation (a path and a message)
into one :class:`~casemesh.harness.errors.ConfigError` listing every problem,
each pointing at the closest line that exists: the offending key, or for a
missing key the mapping that lacks it. :func:`problems_from` turns pydantic's
errors into problems; an unknown key is named with the closest known one
(``unknown field 'duraton_s' (did you mean 'duration_s'?)``, by
:func:`difflib.get_close_matches`).
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Tag, ValidationError
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


def problems_from(error: ValidationError, relocate: Callable[[ErrorDetails], Problem] | None = None, *,
                  model: Any = None) -> list[Problem]:
    """Pydantic's errors as problems, missing keys last (a missing key is often a misspelt one reported first).

    ``model`` is the type that was validated (a pydantic model class): an
    unknown key then reads ``unknown field 'duraton_s' (did you mean
    'duration_s'?)``, or lists the known fields when none is close, instead
    of pydantic's "Extra inputs are not permitted". ``relocate`` turns an
    error into a problem when pydantic's ``loc`` or ``msg`` need adjusting;
    by default they are taken as they are.
    """
    details = sorted(error.errors(include_url=False), key=lambda e: e["type"] == "missing")
    if model is not None:
        details = [_unknown_key_explained(e, model) if e["type"] == "extra_forbidden" else e for e in details]
    return [relocate(e) if relocate else Problem(tuple(e["loc"]), e["msg"]) for e in details]


def unknown_key_message(key: object, known: Sequence[str]) -> str:
    """``unknown field 'KEY' (did you mean 'CLOSEST'?)``, or with the known fields listed when none is close."""
    close = difflib.get_close_matches(str(key), known, n=1)
    if close:
        return f"unknown field {str(key)!r} (did you mean {close[0]!r}?)"
    return f"unknown field {str(key)!r}; known fields: {', '.join(known)}" if known else f"unknown field {str(key)!r}"


def _unknown_key_explained(error: ErrorDetails, model: Any) -> ErrorDetails:
    loc = tuple(error["loc"])
    known = known_fields(model, loc[:-1]) if loc else None
    if known is None:
        return error
    return {**error, "msg": unknown_key_message(loc[-1], known)}


def known_fields(model: Any, loc: Loc) -> list[str] | None:
    """The keys the mapping at ``loc`` (a pydantic error location, union tags included) accepts, as written in YAML.

    Walks the type annotations from ``model`` through model fields (by alias
    or name), list and tuple items, mapping values and tagged unions.
    Fields that exist only to reject a key (typed ``None``) are left out.
    ``None`` when ``loc`` does not lead to a model.
    """
    kind: Any = model
    for part in loc:
        kind = _step(kind, part)
        if kind is None:
            return None
    kind = _unwrap(kind)[0]
    if not (isinstance(kind, type) and issubclass(kind, BaseModel)):
        return None
    return [info.alias or name for name, info in kind.model_fields.items() if info.annotation is not type(None)]


def _unwrap(kind: Any) -> tuple[Any, str | None]:
    """``Annotated[X, ...]`` as ``(X, its Tag's name or None)``; other types as they are."""
    tag = None
    while typing.get_origin(kind) is typing.Annotated:
        tag = next((m.tag for m in kind.__metadata__ if isinstance(m, Tag)), tag)
        kind = kind.__origin__
    return kind, tag


def _step(kind: Any, part: str | int) -> Any:
    """The type one location ``part`` below ``kind``, or ``None``."""
    kind, _ = _unwrap(kind)
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        members = [_unwrap(m) for m in typing.get_args(kind) if m is not type(None)]
        if len(members) == 1:
            return _step(members[0][0], part)
        for member, tag in members:  # pydantic puts the tag of a tagged union's member in the location
            if tag == part or (isinstance(member, type) and issubclass(member, BaseModel) and part in _literal_values(member)):
                return member
        return None
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        for name, info in kind.model_fields.items():
            if part in (name, info.alias):
                return info.annotation
        return None
    args = typing.get_args(kind)
    if isinstance(part, int) and origin in (list, tuple, Sequence, set, frozenset) and args:
        return args[0]
    if origin in (dict, Mapping) and len(args) == 2:
        return args[1]
    return None


def _literal_values(model: type[BaseModel]) -> set[Any]:
    """Every value a ``Literal`` field of ``model`` accepts (the tags of a discriminated union's members)."""
    return {value for info in model.model_fields.values() if typing.get_origin(info.annotation) is typing.Literal
            for value in typing.get_args(info.annotation)}


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
        """A :class:`ConfigError` for the first of ``problems`` (non-empty), the others in its ``more``.

        Each names this file, the line of its location and its dotted field;
        ``field_prefix`` goes before the field (``"[2]"`` for the third
        document of a stream).
        """
        errors = []
        for problem in problems:
            field = dotted(problem.loc)
            if field_prefix:
                field = f"{field_prefix}.{field}" if field else field_prefix
            errors.append(ConfigError(problem.message, file=self.file, line=self.line(problem.loc), field=field or None))
        first = errors[0]
        return ConfigError(first.message, file=first.file, line=first.line, field=first.field, more=errors[1:])


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
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("file not found", file=shown) from None
    except OSError as error:
        raise ConfigError(f"cannot read: {error.strerror or error}", file=shown) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ConfigError(f"not UTF-8 text: {error.reason} at byte {error.start}", file=shown, line=line) from None
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as error:  # a character YAML does not allow (control characters, ...)
        line = text[: error.position].count("\n") + 1
        character = f" #x{error.character:04x}" if isinstance(error.character, int) else ""
        raise ConfigError(f"invalid YAML: character{character} at byte {error.position}: {error.reason}", file=shown, line=line) from None
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
    except RecursionError:  # PyYAML composes nested collections recursively
        raise ConfigError("invalid YAML: collections nested too deeply", file=shown) from None
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
