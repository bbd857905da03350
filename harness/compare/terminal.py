"""``casemesh compare`` in the terminal: the two runs, caveats, a Rich table of percentile differences, SLO changes, the gate."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

_CHANGE_STYLE = {"slower": "bold red", "faster": "bold green", "no change": "dim", "too few calls": "dim italic"}
_VERDICT_STYLE = {"PASS": "green", "FAIL": "bold red", "INCONCLUSIVE": "yellow", "NOT EVALUATED": "dim"}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _signed_ms(value: float) -> str:
    return f"{value:+,.2f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1%}"


def _interval(pair: list[float] | None, fmt: Any) -> str:
    return "-" if pair is None else f"[{fmt(pair[0])}, {fmt(pair[1])}]"


def run_line(side: str, run: Mapping[str, Any]) -> str:
    """``A: PATH (profile P, started T, casemesh V[, INVALID][, noisy])`` as plain text."""
    extras = [f"profile {run.get('profile')}", f"started {run.get('started_at')}", f"casemesh {run.get('casemesh_version')}"]
    if run.get("offered_rps"):
        extras.append(f"{run['offered_rps']:,.0f}/s for {run.get('measured_s') or 0:g} s")
    if not run.get("valid", True):
        extras.append("INVALID")
    if run.get("noisy"):
        extras.append("noisy")
    return f"{side}: {run.get('path')} ({', '.join(extras)})"


def print_comparison(console: Console, document: Mapping[str, Any]) -> None:
    """Print the comparison document (harness/compare/comparison.py) on ``console``; user text is never read as markup."""
    say = lambda text, style="": console.print(Text(text, style=style), soft_wrap=True)  # noqa: E731
    say(run_line("A", document["a"]))
    say(run_line("B", document["b"]))
    for warning in document["warnings"]:
        say(f"warning: {warning}", "bold yellow")
    for note in document["notes"]:
        say(f"note: {note}", "dim")
    method = document["method"]
    confidence = method["confidence"]
    table = Table(title=f"Latency, B against A: {confidence:.0%} interval of B − A; significant: it excludes 0 and |Δ| ≥ {method['min_effect']:.0%}",
                  title_justify="left")
    for column in ("RPC / journey", "calls A / B", "pct", "A ms", "B ms", "Δ ms", "Δ %", f"{confidence:.0%} interval Δ ms", "Δ % interval", "change"):
        table.add_column(column, justify="left" if column in ("RPC / journey", "change") else "right",
                         overflow="fold" if column == "RPC / journey" else "ellipsis", min_width=12 if column == "RPC / journey" else None)
    for comparison in document["comparisons"]:
        for index, row in enumerate(comparison["rows"]):
            first = index == 0
            table.add_row(
                Text(comparison["label"] if first else ""),
                f"{comparison['a_count']:,} / {comparison['b_count']:,}" if first else "",
                row["label"], _ms(row["a_ms"]), _ms(row["b_ms"]), _signed_ms(row["diff_ms"]), _pct(row["diff_pct"]),
                _interval(row["ci_ms"], _signed_ms), _interval(row["ci_pct"], _pct),
                Text(row["change"], style=_CHANGE_STYLE.get(row["change"], "")),
                end_section=index == len(comparison["rows"]) - 1,
            )
    if document["comparisons"]:
        console.print(table)
    else:
        say("no RPC or journey has calls in both runs", "bold yellow")
    for side, key in (("A", "only_in_a"), ("B", "only_in_b")):
        only = [name for names in document[key].values() for name in names]
        if only:
            say(f"only in {side}: {', '.join(only)}", "dim")
    short = sorted({row["note"] for c in document["comparisons"] for row in c["rows"] if row["change"] == "too few calls" and row["note"]})
    for note in short[:3]:
        say(f"not judged: {note}", "dim")
    _print_slos(console, document["slos"])
    _print_gate(console, document)


def _print_slos(console: Console, slos: list[Mapping[str, Any]]) -> None:
    if not slos:
        return
    table = Table(title="SLO verdicts", title_justify="left")
    for column in ("SLO", "A", "B", "measured A", "measured B", ""):
        table.add_column(column)
    for slo in slos:
        cells = [Text(slo["display_name"])]
        for side in ("a", "b"):
            verdict = slo[side]
            cells.append(Text(verdict or "(absent)", style=_VERDICT_STYLE.get(verdict or "", "dim")))
        cells += [("-" if slo[f"{side}_measured"] is None else f"{slo[f'{side}_measured']:.2%}") for side in ("a", "b")]
        cells.append(Text("changed", style="bold") if slo["changed"] else Text(""))
        table.add_row(*cells)
    console.print(table)


def _print_gate(console: Console, document: Mapping[str, Any]) -> None:
    gate = document["gate"]
    if not gate["rules"]:
        console.print(Text("no --fail-on gate: exit 0 whatever changed", style="dim"))
        return
    for regression in gate["regressions"]:
        diff_pct = "" if regression["diff_pct"] is None else f", {regression['diff_pct']:+.1%}"
        console.print(f"[bold red]REGRESSION:[/] {escape(regression['name'])} p{regression['percentile']:g} slower by "
                      f"{regression['diff_ms']:+,.2f} ms{diff_pct} ({escape(regression['rule'])})", soft_wrap=True, highlight=False)
    if gate["failed"]:
        console.print(f"[bold red]FAILED:[/] {len(gate['regressions'])} regression(s) beyond the gate", highlight=False)
    else:
        console.print(f"[bold green]PASSED:[/] no significant regression beyond {escape(', '.join(gate['rules']))}", highlight=False)
