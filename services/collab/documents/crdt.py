"""The few pieces of the Yjs wire formats the documents service reads itself (pycrdt does the rest).

Seed 001 #06, "Collaborative Docs": the CRDT is Yjs (pycrdt binds Yrs, its
Rust port). pycrdt applies and encodes updates; what it does not expose, and
the store needs, is read here from the encodings, as lib0/Yjs define them
(``lib0/decoding.js``, ``yjs/src/utils/encoding.js``, ``y-protocols/awareness.js``):

- a **variable-length unsigned integer** (lib0 ``varUint``): 7 bits per byte,
  least significant group first, the high bit set on every byte but the last;
- a **state vector** (Yjs ``encodeStateVector``): ``varUint`` count, then
  that many ``(client, clock)`` pairs of ``varUint``; ``clock`` is the number
  of structs of ``client`` the document holds (clocks 0 to clock - 1);
- a **delete set** (the tail of every v1 update): ``varUint`` client count;
  per client its ID, its range count and the ranges as ``(clock, length)``;
- an **awareness update** (y-protocols ``encodeAwarenessUpdate``): ``varUint``
  count, then per client ``varUint`` client ID, ``varUint`` clock and the
  state as a ``varString`` (``varUint`` byte length + UTF-8) of JSON
  (``null``, or an empty string, removes the client's state).

:func:`adds_to` answers the question a Yjs document cannot: does an update
hold anything the document lacks, including parts the document keeps aside
because they depend on structs it has not seen yet (Yjs "pending" structs and
deletes, applied once their dependencies arrive)? Yrs integrates nothing of
those and fires no update event, yet they are new: they must be logged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pycrdt

#: The state vector of an empty document (no client, nothing held).
EMPTY_STATE_VECTOR = b"\x00"
#: An update that holds nothing (no structs, an empty delete set).
EMPTY_UPDATE = b"\x00\x00"


def read_var_uint(data: bytes, position: int) -> tuple[int, int]:
    """The lib0 ``varUint`` at ``position`` and the position after it; ``ValueError`` when ``data`` ends inside it
    or it is longer than 53 bits (JavaScript's safe integers, all a Yjs encoder writes)."""
    value = 0
    shift = 0
    end = len(data)
    while True:
        if position >= end:
            raise ValueError("the data ends inside a variable-length integer")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7
        if shift > 56:
            raise ValueError("a variable-length integer is longer than 53 bits")


def decode_state_vector(data: bytes) -> dict[int, int]:
    """Client ID → clock of a Yjs (v1) state vector (empty ``data``: an empty one); ``ValueError`` when ``data`` is not
    exactly one state vector (truncated, trailing bytes, a client twice)."""
    if not data:
        return {}
    count, position = read_var_uint(data, 0)
    if count > len(data):  # every pair takes at least two bytes: a count beyond that is garbage
        raise ValueError(f"a state vector of {len(data)} bytes cannot hold {count} clients")
    clocks: dict[int, int] = {}
    for _ in range(count):
        client, position = read_var_uint(data, position)
        clock, position = read_var_uint(data, position)
        if client in clocks:
            raise ValueError(f"client {client} appears twice in the state vector")
        clocks[client] = clock
    if position != len(data):
        raise ValueError(f"{len(data) - position} bytes follow the state vector")
    return clocks


def _delete_ranges_beyond(data: bytes, position: int, clocks: dict[int, int]) -> bool:
    """Whether a delete set (at ``position`` of ``data``) names a struct beyond ``clocks`` (one the document lacks)."""
    clients, position = read_var_uint(data, position)
    for _ in range(clients):
        client, position = read_var_uint(data, position)
        ranges, position = read_var_uint(data, position)
        known = clocks.get(client, 0)
        for _ in range(ranges):
            clock, position = read_var_uint(data, position)
            length, position = read_var_uint(data, position)
            if clock + length > known:
                return True
    return False


def adds_to(update: bytes, state_vector: bytes, clocks: dict[int, int] | None = None) -> bool:
    """Whether Yjs (v1) ``update`` holds a struct, or deletes a struct, that a document with ``state_vector`` lacks.

    ``clocks`` is ``decode_state_vector(state_vector)`` when the caller has it.
    Structs: pycrdt's ``get_update(update, state_vector)`` keeps only those
    beyond the state vector (and the whole delete set); when none is left its
    structs section is empty (one zero byte). Deletes: a delete range ending
    beyond the document's clock of its client names a struct the document
    has not seen. Cost: O(len(update)) in Rust plus one pass over the delete
    ranges. ``ValueError`` for an update pycrdt cannot decode.
    """
    rest = pycrdt.get_update(update, state_vector)
    if not rest or rest[0] != 0:  # structs the document lacks (or an encoding this reader does not know: say "new")
        return True
    if rest == EMPTY_UPDATE:  # and no delete set: the common case of an insert, without decoding the state vector
        return False
    return _delete_ranges_beyond(rest, 1, decode_state_vector(state_vector) if clocks is None else clocks)


def pack_updates(updates: list[bytes]) -> bytes:
    """Several updates in one blob, each as a ``varUint`` length and its bytes (a snapshot's waiting updates, kept
    byte for byte so that a repeat of one is still recognised after a restart)."""
    out = bytearray()
    for update in updates:
        out += _var_uint(len(update))
        out += update
    return bytes(out)


def unpack_updates(blob: bytes) -> list[bytes]:
    """The updates of a :func:`pack_updates` blob; ``ValueError`` when it is not one."""
    updates, position = [], 0
    while position < len(blob):
        length, position = read_var_uint(blob, position)
        if position + length > len(blob):
            raise ValueError("the blob ends inside an update")
        updates.append(blob[position:position + length])
        position += length
    return updates


def _var_uint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


@dataclass(frozen=True, slots=True)
class AwarenessEntry:
    """One client's part of an awareness update: its clock and state (``None``: the client is gone)."""

    client_id: int
    clock: int
    state: Any


def decode_awareness(update: bytes) -> list[AwarenessEntry]:
    """The entries of a y-protocols awareness update; ``ValueError`` when ``update`` is not exactly one (truncated,
    trailing bytes, a state that is not UTF-8 JSON, no entry at all)."""
    count, position = read_var_uint(update, 0)
    if count == 0:
        raise ValueError("an awareness update names at least one client")
    if count > len(update):
        raise ValueError(f"an awareness update of {len(update)} bytes cannot hold {count} clients")
    entries: list[AwarenessEntry] = []
    for _ in range(count):
        client, position = read_var_uint(update, position)
        clock, position = read_var_uint(update, position)
        length, position = read_var_uint(update, position)
        if position + length > len(update):
            raise ValueError("the data ends inside an awareness state")
        raw = update[position:position + length]
        position += length
        try:
            state = json.loads(raw.decode("utf-8")) if raw else None
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"client {client}'s awareness state is not UTF-8 JSON: {error}") from None
        entries.append(AwarenessEntry(client, clock, state))
    if position != len(update):
        raise ValueError(f"{len(update) - position} bytes follow the awareness update")
    return entries
