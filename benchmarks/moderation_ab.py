"""The content moderation A/B: the confidence thresholds (moderation-pipeline.approve_below / remove_above) against the
human review queue's load and the error rate of the automatic decisions on the held-out labelled set.

Usage::

    .venv/bin/python benchmarks/moderation_ab.py [--arms narrow,default,wide] [--duration 60] [--warmup 5]
        [--repeat 1] [--json FILE]

Each arm is ``casemesh run moderation-thresholds`` (harness/profiles/moderation-thresholds.yaml: authors post items of
the corpus's held-out split, services/moderation/corpus.py, that the classifier never trained on; simulated reviewers
claim tasks at a fixed rate, the human review capacity; moderation-classifier, moderation-pipeline and
moderation-review on 127.0.0.1) with the arm's thresholds (seed 001 #26 "confidence routing"):

- ``narrow`` (0.5 / 0.5): no review band, every item decided by the classifier alone;
- ``default`` (0.2 / 0.8, the shipped setting);
- ``wide`` (0.05 / 0.95): the classifier decides only what it is nearly sure of, humans the rest.

First, with no mesh, the threshold sweep: the classifier fitted as moderation-classifier fits it at start
(services/moderation/classifier/model.py, 20,000 training items) scores the whole held-out split (5,000 items), and for
each pair of thresholds the table gives the share the band would send to review and the error rate of the decisions
left to the classifier (``--no-sweep`` skips it). Then the runs. Reported per arm (result.json): the share of items sent to review (``time_to_decision``'s IN_REVIEW code over its
samples), the automatic decisions' error rate and its false approvals and removals (``auto_decision_correct`` against
the labels), the review tasks' wait for a reviewer (``review_wait`` p95: first reviews and appeals) and the share
claimed within their SLA (``moderation-review-wait``), time to decision p99 (every post's routing, the review band's
included), every SLO verdict, the send lag p99 and the run's validity. ``--json FILE`` keeps the raw rows. The runs
are benchmarks/ab.py's: one after the other (interleaved with ``--repeat``), a time limit each, everything on
127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ab import add_arguments, common, finish, journey, ms, run_casemesh, run_rounds, slo_cell

ARMS: dict[str, list[str]] = {
    "narrow": ["moderation-pipeline.approve_below=0.5", "moderation-pipeline.remove_above=0.5"],
    "default": ["moderation-pipeline.approve_below=0.2", "moderation-pipeline.remove_above=0.8"],
    "wide": ["moderation-pipeline.approve_below=0.05", "moderation-pipeline.remove_above=0.95"],
}
#: The sweep's (approve_below, remove_above) pairs, narrowest band first.
SWEEP = ((0.5, 0.5), (0.3, 0.7), (0.2, 0.8), (0.1, 0.9), (0.05, 0.95), (0.02, 0.98))
PROFILE = "moderation-thresholds"
REVIEW_WAIT_SLO = "moderation-review-wait"


def run_arm(name: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """One ``casemesh run moderation-thresholds`` with the arm's thresholds; the figures from its result.json."""
    result, exit_code = run_casemesh(PROFILE, ARMS[name], rate_scale=args.rate_scale, duration_s=args.duration,
                                     warmup_s=args.warmup, out=out)
    decisions = result["journeys"].get("time_to_decision", {})
    routed = decisions.get("count", 0)
    to_review = decisions.get("errors", {}).get("IN_REVIEW", 0)
    correct = result["journeys"].get("auto_decision_correct", {})
    wrong = correct.get("errors", {})
    judged = correct.get("count", 0)
    within_sla = next((s["measured"] for s in result["slos"] if s["name"] == REVIEW_WAIT_SLO), None)
    return {**common(name, result, exit_code), "settings": ARMS[name], "routed": routed,
            "review_share": to_review / routed if routed else None, "auto_judged": judged,
            "auto_error_rate": sum(wrong.values()) / judged if judged else None,
            "false_approvals": wrong.get("FALSE_APPROVE", 0), "false_removals": wrong.get("FALSE_REMOVE", 0),
            "review_wait_p95_ms": journey(result, "review_wait", "p95_ms"), "review_within_sla": within_sla,
            "decision_p99_ms": journey(result, "time_to_decision", "p99_ms")}


def _share(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}%}"


def sweep() -> str:
    """The threshold sweep over the held-out split (module docstring), as a Markdown table."""
    from casemesh.services.moderation import corpus
    from casemesh.services.moderation.classifier.features import FeatureExtractor
    from casemesh.services.moderation.classifier.model import fit
    from casemesh.services.moderation.classifier.settings import ClassifierSettings

    settings = ClassifierSettings()
    classifier, _ = fit(settings.training_items, settings.held_out_items, FeatureExtractor())
    held_out = corpus.split("held_out", settings.held_out_items)
    scored = [(classifier.classify(item.text)[0], item.violating) for item in held_out]
    lines = [(f"Held-out split: {len(scored):,} items ({sum(v for _, v in scored):,} violating), model "
             f"{classifier.model.version}, AUC {classifier.model.held_out_auc:.3f}"), "",
             ("| approve below | remove at or above | sent to review | auto-decision errors | false approvals | "
             "false removals |"), "|---:|---:|---:|---:|---:|---:|"]
    for approve_below, remove_above in SWEEP:
        auto = [(p, v) for p, v in scored if p < approve_below or p >= remove_above]
        false_approve = sum(1 for p, v in auto if p < approve_below and v)
        false_remove = sum(1 for p, v in auto if p >= remove_above and not v)
        lines.append(f"| {approve_below:g} | {remove_above:g} | {1 - len(auto) / len(scored):.1%} | "
                     f"{(false_approve + false_remove) / len(auto) if auto else 0:.1%} | {false_approve} | "
                     f"{false_remove} |")
    return "\n".join(lines)


def table(rows: list[dict[str, Any]]) -> str:
    lines = [("| arm | thresholds | items routed | sent to review | auto-decision errors (false approve / "
              "remove) | review wait p95 | claimed within SLA | time to decision p99 | SLOs | send lag p99 | "
              "valid |"),
             "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---|"]
    for r in rows:
        thresholds = " / ".join(s.split("=", 1)[1] for s in r["settings"])
        lines.append(f"| {r['arm']} | {thresholds} | {r['routed']:,} | {_share(r['review_share'])} | "
                     f"{_share(r['auto_error_rate'])} ({r['false_approvals']} / {r['false_removals']}) | "
                     f"{ms(r['review_wait_p95_ms'])} | {_share(r['review_within_sla'])} | "
                     f"{ms(r['decision_p99_ms'])} | {slo_cell(r)} | {r['send_lag_p99_ms']:.1f} ms | "
                     f"{'yes' if r['valid'] else 'no'} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser, ARMS, "narrow,default,wide", duration_s=60.0)
    parser.add_argument("--no-sweep", action="store_true", help="skip the threshold sweep over the held-out split")
    args = parser.parse_args()
    if not args.no_sweep:
        print(sweep(), "", sep="\n", flush=True)
        print("runs ...", file=sys.stderr, flush=True)
    rows = run_rounds(parser, args, ARMS, run_arm, "moderation")
    return finish(rows, table(rows), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
