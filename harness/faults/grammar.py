"""The ``--fault`` grammar of ``casemesh run`` (docs/cli.md, "--fault"), and the delay spelling shared with profiles.

::

    FAULT    := TARGET ":" ACTION ("," OPTION)*
    TARGET   := SERVICE | SERVICE "/" METHOD                  idgen, idgen/LeaseIds
    ACTION   := "abort=" CODE [SHARE]                          abort=UNAVAILABLE@20%
              | "delay=" DELAY [SHARE]                         delay=50ms, delay=exponential(50ms)@10%
              | "kill" ["=" ("SIGKILL" | "SIGTERM")]           kill, kill=SIGTERM
              | "pause"
    SHARE    := "@" NUMBER "%"                                 the share of calls hit (default 100%)
    OPTION   := "at=" DURATION                                 start, from the measured window's start (default 0s)
              | "for=" DURATION                                how long (abort, delay, pause; default: to the window's end)
              | "restart_after=" DURATION                      kill: start the service again this long after
              | "name=" NAME                                   default KIND:TARGET
    DELAY    := DURATION | "uniform(" DURATION "," DURATION ")" | "exponential(" DURATION ")"
              | "lognormal(" DURATION "," SIGMA ")"            lognormal: median and shape
    DURATION := NUMBER ("ms" | "s" | "m")                      500ms, 10s, 1.5m

Commas inside parentheses belong to the delay. :func:`parse_fault` returns
the same mapping a profile's ``faults:`` entry is (``kind``, ``target``,
``at_s``, ...), validated afterwards by the same model; every syntax error
is a :class:`FaultSyntaxError` naming the part that is wrong.
"""

from __future__ import annotations

import re
from typing import Any

from casemesh.services.runtime.faults import Delay

_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_DURATION = re.compile(rf"^({_NUMBER})(ms|s|m)$")
_SHARE = re.compile(rf"^(.*)@({_NUMBER})%$")
_CALL = re.compile(r"^([a-z]+)\((.*)\)$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0}
_OPTIONS = {"at": "at_s", "for": "for_s", "restart_after": "restart_after_s", "name": "name"}
ACTIONS = ("abort", "delay", "kill", "pause")


class FaultSyntaxError(ValueError):
    """A ``--fault`` (or a delay) that does not follow the grammar; the message names the bad part."""


def parse_duration_s(text: str, what: str) -> float:
    """``500ms`` → 0.5, ``10s`` → 10.0, ``1.5m`` → 90.0; ``FaultSyntaxError`` naming ``what`` otherwise."""
    match = _DURATION.match(text.strip())
    if not match:
        hint = f" (a unit is needed: {text.strip()}s or {text.strip()}ms)" if re.fullmatch(_NUMBER, text.strip()) else ""
        raise FaultSyntaxError(f"{what}: {text!r} is not a duration such as 500ms, 10s or 1.5m{hint}")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def parse_delay(text: str) -> Delay:
    """``50ms``, ``uniform(10ms,100ms)``, ``exponential(50ms)``, ``lognormal(50ms,0.5)`` as a :class:`Delay`."""
    text = text.strip()
    call = _CALL.match(text)
    if call is None:
        return _delay({"distribution": "fixed", "ms": parse_duration_s(text, "delay") * 1000}, text)
    name, args = call.group(1), [a.strip() for a in call.group(2).split(",")]
    shapes = {"uniform": ("min", "max"), "exponential": ("mean",), "exp": ("mean",), "lognormal": ("median", "sigma")}
    if name not in shapes:
        raise FaultSyntaxError(f"delay: unknown distribution {name!r} in {text!r}; known: uniform(MIN,MAX), exponential(MEAN), "
                               "lognormal(MEDIAN,SIGMA)")
    if len(args) != len(shapes[name]):
        raise FaultSyntaxError(f"delay: {name} takes {len(shapes[name])} argument(s) ({', '.join(shapes[name]).upper()}), "
                               f"not {len(args)}, in {text!r}")
    if name == "uniform":
        data = {"distribution": "uniform", "min_ms": parse_duration_s(args[0], "delay MIN") * 1000,
                "max_ms": parse_duration_s(args[1], "delay MAX") * 1000}
    elif name in ("exponential", "exp"):
        data = {"distribution": "exponential", "mean_ms": parse_duration_s(args[0], "delay MEAN") * 1000}
    else:
        try:
            sigma = float(args[1])
        except ValueError:
            raise FaultSyntaxError(f"delay SIGMA: {args[1]!r} is not a number (the log's standard deviation, e.g. 0.5)") from None
        data = {"distribution": "lognormal", "median_ms": parse_duration_s(args[0], "delay MEDIAN") * 1000, "sigma": sigma}
    return _delay(data, text)


def _delay(data: dict[str, Any], text: str) -> Delay:
    try:
        return Delay.from_dict(data)
    except ValueError as error:
        raise FaultSyntaxError(f"delay {text!r}: {error}") from None


def split_top_level(text: str) -> list[str]:
    """``text`` split at the commas outside parentheses; ``FaultSyntaxError`` for unbalanced parentheses."""
    parts, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise FaultSyntaxError(f"unbalanced ')' in {text!r}")
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth:
        raise FaultSyntaxError(f"unbalanced '(' in {text!r}")
    parts.append("".join(current))
    return parts


def parse_fault(text: str) -> dict[str, Any]:
    """One ``--fault`` as the mapping of a profile's ``faults:`` entry; ``FaultSyntaxError`` naming the bad part."""
    target, colon, rest = text.strip().partition(":")
    if not colon or not target.strip():
        raise FaultSyntaxError("expected TARGET:ACTION[,OPTION...], e.g. idgen/LeaseIds:abort=UNAVAILABLE@20%,at=10s,for=5s "
                               "or idgen:kill,at=10s,restart_after=5s")
    action, *options = [part.strip() for part in split_top_level(rest)]
    data: dict[str, Any] = {"target": target.strip()}
    keyword, eq, value = action.partition("=")
    keyword = keyword.strip().lower()
    if keyword not in ACTIONS:
        raise FaultSyntaxError(f"action: {action!r} is not one of abort=CODE, delay=DELAY, kill[=SIGNAL], pause")
    data["kind"] = keyword
    if keyword in ("abort", "delay"):
        if not eq or not value.strip():
            raise FaultSyntaxError(f"action: {keyword} needs a value: " + ("abort=UNAVAILABLE[@20%]" if keyword == "abort" else "delay=50ms[@20%]"))
        share = _SHARE.match(value.strip())
        if share:
            value = share.group(1)
            data["percent"] = float(share.group(2))
        elif "@" in value:
            raise FaultSyntaxError(f"{keyword}: {value!r}: the share of calls is written @PERCENT% (e.g. @20%)")
        if keyword == "abort":
            data["code"] = value.strip()
        else:
            parse_delay(value)
            data["delay"] = value.strip()
    elif keyword == "kill":
        if eq:
            data["signal"] = value.strip().upper()
    elif eq:
        raise FaultSyntaxError(f"action: pause takes no value (its length is for=DURATION), not {action!r}")
    for option in options:
        key, eq, value = option.partition("=")
        key = key.strip().lower()
        if key not in _OPTIONS or not eq or not value.strip():
            raise FaultSyntaxError(f"option {option!r}: expected at=DURATION, for=DURATION, restart_after=DURATION or name=NAME")
        field = _OPTIONS[key]
        if field in data:
            raise FaultSyntaxError(f"option {key} given twice")
        data[field] = value.strip() if key == "name" else parse_duration_s(value, key)
    return data
