"""``casemesh compare A B``, behind the command line: load both runs, compare, print, write the files, return the exit code.

Exit codes: 0 no regression beyond the ``--fail-on`` gate (or no gate), 1 a
regression beyond it, 2 bad input (a file that is not a casemesh result, a
bad option, a file that cannot be written).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from ..errors import ConfigError
from .comparison import compare_runs, exit_code
from .document import load_run
from .gate import parse_fraction, parse_percentiles, parse_rule
from .page import render_compare_page
from .terminal import print_comparison

#: Exit code for bad input, as ``casemesh run``'s configuration error.
BAD_INPUT = 2


def compare_command(a: Path, b: Path, *, percentiles: str, confidence: float, min_effect: str, fail_on: Sequence[str],
                    resamples: int, seed: int, json_out: Path | None, html_out: Path | None, out: Path | None,
                    console: Console) -> int:
    """Run ``casemesh compare`` and return its exit code (0, 1); ``ConfigError`` for bad input (the caller exits 2).

    Writes ``json_out`` and ``html_out`` when given; ``out`` is a directory
    that receives ``compare.json`` and ``compare.html`` (created if needed).
    """
    wanted = parse_percentiles(percentiles)
    if not 0.5 <= confidence < 1:
        raise ConfigError(f"{confidence:g}: expected a confidence level from 0.5 to below 1 (e.g. 0.95)", field="--confidence")
    effect = parse_fraction(min_effect, "--min-effect")
    rules = [parse_rule(text) for text in fail_on]
    run_a, run_b = load_run(a), load_run(b)
    document = compare_runs(run_a, run_b, percentiles=wanted, confidence=confidence, resamples=resamples, seed=seed,
                            min_effect=effect, rules=rules)
    code = exit_code(document)
    document["exit_code"] = code
    print_comparison(console, document)
    targets: list[tuple[Path, str]] = []
    if out is not None:
        targets += [(out / "compare.json", "json"), (out / "compare.html", "html")]
    if json_out is not None:
        targets.append((json_out, "json"))
    if html_out is not None:
        targets.append((html_out, "html"))
    page = render_compare_page(document, run_a, run_b) if any(kind == "html" for _, kind in targets) else ""
    for path, kind in targets:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(document, indent=2) + "\n" if kind == "json" else page, encoding="utf-8")
        except OSError as error:
            flag = "--out" if out is not None and path.parent == out else ("--json" if kind == "json" else "--html")
            raise ConfigError(f"cannot write {path}: {error.strerror or error}", field=flag) from None
        console.print(f"{'compare.json' if kind == 'json' else 'page'}: {path}", highlight=False, soft_wrap=True, markup=False)
    return code
