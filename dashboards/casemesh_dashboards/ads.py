"""Ad serving: Decide against the seed's 100 ms and answered OK, decisions by outcome (an ad served or a no-fill by
reason) and the fill rate, the candidates targeting retrieves and the bidders the budget and frequency filters leave,
each phase of a decision, the first-price auction's attempts, frequency caps reserved, budgets charged, exhausted and
paced (the A/B switch ``ads-budget.pacing``), the campaigns and the ad server's targeting index, clicks, and every
store's group commit.

Case study: seed 001 #15, shared/seeds/001_58dfc580020147d2.txt line 40 ("| 15 | Ad Serving | <100ms decisioning,
frequency caps, first-price auction, pacing, privacy-first | 1M RPS, Google Ads |"). Contracts in
protos/casemesh/ads/v1/, SLOs in harness/profiles/ads.slo.yaml (drawn here: the server-side twins
ads-decide-latency-server and ads-decide-availability-server; their targets are read from that file when the dashboard
is built) and harness/profiles/ads-pacing.slo.yaml (ads-budgets-last-the-day: measured by the harness per campaign-day
it sees exhausted, drawn on the harness dashboard; its bound and target, read from that file, name the pacing row,
whose throttles are the budget service's side of it).

Service metrics, as the ad services expose them: ``casemesh_ads_campaigns_campaigns{state}`` (``active``,
``paused``), ``casemesh_ads_campaigns_writes_total{kind}`` (``create``, ``state``), ``casemesh_ads_campaigns_version``,
``casemesh_ads_campaigns_commit_seconds``, ``casemesh_ads_campaigns_writes_per_commit`` (ads-campaigns,
services/ads/campaigns/metrics.py); ``casemesh_ads_budget_charges_total{outcome}`` (``charged``, ``budget_exhausted``,
``paced``, ``paused``, ``repeated``), ``casemesh_ads_budget_spent_milli_minor_total``,
``casemesh_ads_budget_pacing_throttles_total``, ``casemesh_ads_budget_exhausted_campaigns``,
``casemesh_ads_budget_campaigns``, ``casemesh_ads_budget_sync_errors_total``, ``casemesh_ads_budget_commit_seconds``,
``casemesh_ads_budget_writes_per_commit`` (ads-budget, services/ads/budget/metrics.py);
``casemesh_ads_frequency_reserves_total{outcome}`` (``reserved``, ``repeated``, ``capped``, ``key_reused``,
``unavailable``), ``casemesh_ads_frequency_releases_total``, ``casemesh_ads_frequency_users``,
``casemesh_ads_frequency_reservations``, ``casemesh_ads_frequency_commit_seconds``,
``casemesh_ads_frequency_writes_per_commit`` (ads-frequency, services/ads/frequency/metrics.py);
``casemesh_ads_server_decisions_total{outcome}`` (``served``, ``repeated``, ``no_candidates``, ``budget``,
``frequency_capped``, ``unavailable``), ``casemesh_ads_server_candidates``, ``casemesh_ads_server_bidders``,
``casemesh_ads_server_auction_attempts``, ``casemesh_ads_server_decide_phase_seconds{phase}`` (``retrieve``,
``filter``, ``reserve``, ``charge``, ``log``), ``casemesh_ads_server_decide_seconds``,
``casemesh_ads_server_index_campaigns``, ``casemesh_ads_server_index_version``,
``casemesh_ads_server_sync_failures_total``, ``casemesh_ads_server_clicks_total{first}`` (``true``, ``false``),
``casemesh_ads_server_dependency_calls_total{method,code}``, ``casemesh_ads_server_commit_seconds``,
``casemesh_ads_server_writes_per_commit`` (ads-server, services/ads/server/metrics.py); and the runtime's
``grpc_server_handled_total`` and ``grpc_server_handling_seconds`` of the four services (the twins of Decide). Only the
gRPC histograms carry exemplars.

Not exported, so not drawn: per-campaign spend (GetSpend's: a series per campaign would be too many), the share of the
day left when a budget ran out (the harness's budget_exhaustion journey) and the frequency-cap breaches a user saw (only
a client knows what it was served: the harness's frequency_respected journey).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from casemesh.harness.profile import PROFILES_DIR, SLO_FILE_SUFFIX
from casemesh.harness.slo import load_slos

from .common import (
    ERROR_CODES_MATCHER, latency_panel, le, mean, new_dashboard, quantile, query, query_variable, rate, refs, selector,
    slo_targets, stat_panel, timeseries_panel, within,
)

UID = "casemesh-ads"
AD_SERVICE = "casemesh.ads.v1.AdService"
HANDLING = "grpc_server_handling_seconds"
HANDLED = "grpc_server_handled_total"
#: The ads profiles' SLOs: the targets drawn here are read from them (:func:`build`).
SLO_FILE = PROFILES_DIR / f"ads{SLO_FILE_SUFFIX}"
PACING_SLO_FILE = PROFILES_DIR / f"ads-pacing{SLO_FILE_SUFFIX}"
#: ads-decide-latency-server (ads.slo.yaml): Decide handled within 100 ms, a bucket of grpc_server_handling_seconds.
DECIDE_S = 0.1
DECISIONS = "casemesh_ads_server_decisions_total"
CHARGES = "casemesh_ads_budget_charges_total"
RESERVES = "casemesh_ads_frequency_reserves_total"
CLICKS = "casemesh_ads_server_clicks_total"
ATTEMPTS = "casemesh_ads_server_auction_attempts"
#: The four stores' group commits (one SQLite file each), by service.
STORES = ("campaigns", "budget", "frequency", "server")
JOB = 'job=~"$job"'
ADS_SERVICES = r'grpc_service=~"casemesh\\.ads\\.v1\\..+"'
#: The ad services' jobs.
ADS_JOBS = r'{__name__="grpc_server_handled_total", grpc_service=~"casemesh\\.ads\\.v1\\..+"}'
#: Decisions that are answers: an ad served or a no-fill, the repeats of a served request left out.
DECIDED = 'outcome=~"served|no_candidates|budget|frequency_capped"'


def build() -> Dashboard:
    target = slo_targets(SLO_FILE)
    latency_target = target["ads-decide-latency-server"]
    answered_target = target["ads-decide-availability-server"]
    lasts = {slo.name: slo for slo in load_slos(PACING_SLO_FILE)}["ads-budgets-last-the-day"]
    day_left = lasts.good.latency_le_ms / 1000
    jobs = selector(JOB)
    decides = selector(JOB, f'grpc_service="{AD_SERVICE}"', 'grpc_method="Decide"')
    decided_ok = selector(JOB, f'grpc_service="{AD_SERVICE}"', 'grpc_method="Decide"', 'grpc_code="OK"')
    decide_ms = f"{DECIDE_S * 1000:g} ms"
    served = selector(JOB, 'outcome="served"')
    decided = selector(JOB, DECIDED)
    one_attempt = selector(JOB, f'le="{le(1)}"')
    active = selector(JOB, 'state="active"')
    board = (
        new_dashboard(UID, "casemesh / ad serving",
                      "The ad serving case study (Google Ads): Decide against the seed's 100 ms and answered OK, "
                      "decisions by outcome and the fill rate, targeting, the budget and frequency filters, the "
                      "first-price auction, frequency caps, daily budgets and their pacing (the pacing A/B), the "
                      "campaigns and the targeting index, clicks and every store's group commit.",
                      ["ads"])
        .with_variable(query_variable("job", "Job", f"label_values({ADS_JOBS}, job)"))
    )
    board = (
        board.with_row(Row(f"Decide: {latency_target:.0%} within {decide_ms}, {answered_target:.0%} answered OK "
                           f"(seed 001 #15: \"<100ms decisioning\")"))
        .with_panel(latency_panel(
            f"Decide time vs {decide_ms}",
            "AdService/Decide handling time in ads-server (grpc_server_handling_seconds): the index lookup, "
            "CheckEligibility and GetCounts in parallel, the winner's Reserve and Charge (each waits for an fsync on "
            "its side, and again for the next bidder when one refuses) and the impression's own durable write; the "
            "outgoing calls fit in decide_deadline_ms (90 ms) or the call answers UNAVAILABLE. The dashed line is "
            "the SLO ads-decide-latency-server of ads.slo.yaml (the twin of ads-decide-latency, which the harness "
            "times from the request's intended start). Dots are exemplars.",
            HANDLING, decides, (), "", width=8, threshold_s=DECIDE_S))
        .with_panel(timeseries_panel(
            f"Decide within {decide_ms}",
            f"Share of Decide calls handled within {decide_ms} (le=\"{le(DECIDE_S)}\" bucket over the count of "
            f"grpc_server_handling_seconds: ads-decide-latency-server); the dashed line is its target "
            f"{latency_target:g}.", "percentunit",
            [query(within(HANDLING, decides, DECIDE_S), f"within {decide_ms}")],
            width=5, threshold_line=(latency_target, "red"), max_value=1))
        .with_panel(stat_panel(
            f"Decide within {decide_ms} over the range",
            f"Share of Decide calls handled within {decide_ms} over the selected time range, against "
            f"{latency_target:g} (ads-decide-latency-server).", "percentunit",
            [query(within(HANDLING, decides, DECIDE_S, window="$__range"), instant=True)],
            width=3, height=8, base="red", steps=((latency_target, "green"),), decimals=3))
        .with_panel(timeseries_panel(
            "Decide answered OK",
            f"Decide calls answered OK (an ad served or a no-fill) over all of them (grpc_server_handled_total: the "
            f"SLO ads-decide-availability-server of ads.slo.yaml; UNAVAILABLE, a dependency that did not answer "
            f"within the decision's budget, is bad); the dashed line is its target {answered_target:g}.",
            "percentunit",
            [query(f"{rate(HANDLED, decided_ok)} / {rate(HANDLED, decides)}", "answered OK")],
            width=5, threshold_line=(answered_target, "red"), max_value=1))
        .with_panel(stat_panel(
            "Decide OK over the range",
            f"Share of Decide calls answered OK over the selected time range, against {answered_target:g} "
            f"(ads-decide-availability-server).", "percentunit",
            [query(f"sum(increase({HANDLED}{decided_ok}[$__range])) / sum(increase({HANDLED}{decides}[$__range]))",
                   instant=True)],
            width=3, height=8, base="red", steps=((answered_target, "green"),), decimals=3))
    )
    board = (
        board.with_row(Row("Decisions: served or no fill, and the way there (targeting, filters, first-price "
                           "auction)"))
        .with_panel(timeseries_panel(
            "Decisions by outcome",
            "Decide's answers per second (casemesh_ads_server_decisions_total): served (an ad), the no-fills by "
            "reason: no_candidates (no active campaign targets the request), budget (every candidate's budget spent "
            "or held back by pacing, or the winners' charges refused), frequency_capped (the user reached every "
            "remaining candidate's cap, or the winners' reservations were refused); repeated (a request ID served "
            "already: the same ad, nothing charged again) and unavailable (a dependency did not answer in time: "
            "nothing served).", "ops",
            [query(rate(DECISIONS, jobs, ("outcome",)), "{{outcome}}")], width=8, stacked=True))
        .with_panel(timeseries_panel(
            "Fill rate",
            "Decisions that served an ad over the decisions made (served and the three no-fills: "
            "casemesh_ads_server_decisions_total), repeats and failures left out.", "percentunit",
            [query(f"{rate(DECISIONS, served)} / {rate(DECISIONS, decided)}", "fill rate")],
            width=4, max_value=1, min_value=0))
        .with_panel(timeseries_panel(
            "Candidates and bidders per decision",
            "Campaigns targeting retrieved per decision (casemesh_ads_server_candidates: the inverted index over "
            "countries, interests and devices, the highest bids first, at most max_candidates) and those left after "
            "the budget and frequency filters (casemesh_ads_server_bidders, per decision that had candidates).",
            "short",
            refs([(mean("casemesh_ads_server_candidates", jobs), "candidates (mean)"),
                  (quantile(0.99, "casemesh_ads_server_candidates", jobs), "candidates (p99)"),
                  (mean("casemesh_ads_server_bidders", jobs), "bidders (mean)"),
                  (quantile(0.99, "casemesh_ads_server_bidders", jobs), "bidders (p99)")]), width=6, min_value=0))
        .with_panel(timeseries_panel(
            "Auction attempts",
            f"Bidders tried per first-price auction, best bid first (casemesh_ads_server_auction_attempts: 1 when "
            f"the winner's reservation and charge were both taken; at most max_attempts), and the share of auctions "
            f"that needed more than one (the le=\"{le(1)}\" bucket's complement).", "short",
            refs([(mean(ATTEMPTS, jobs), "mean"),
                  (quantile(0.99, ATTEMPTS, jobs), "p99"),
                  (f"1 - {rate(f'{ATTEMPTS}_bucket', one_attempt)} / {rate(f'{ATTEMPTS}_count', jobs)}",
                   "share with a retry")]), width=6, min_value=0))
    )
    board = (
        board.with_row(Row("Where a decision's time goes"))
        .with_panel(latency_panel(
            "Decide phase time",
            "Each phase of a decision (casemesh_ads_server_decide_phase_seconds), by phase: retrieve (the targeting "
            "index, in memory), filter (CheckEligibility and GetCounts in parallel), reserve and charge (summed over "
            "the auction's attempts, each waiting for its service's fsync), log (the impression's durable write).",
            "casemesh_ads_server_decide_phase_seconds", jobs, ("phase",), "{{phase}}", quantiles=(0.5, 0.99),
            width=8))
        .with_panel(latency_panel(
            f"Whole decision vs {decide_ms}",
            "A whole decision inside the handler, repeats excluded (casemesh_ads_server_decide_seconds).",
            "casemesh_ads_server_decide_seconds", jobs, (), "", quantiles=(0.5, 0.99), width=8, threshold_s=DECIDE_S))
        .with_panel(timeseries_panel(
            "ads-server's calls by code",
            "ads-server's outgoing calls per second by method and status code "
            "(casemesh_ads_server_dependency_calls_total): CheckEligibility and Charge to ads-budget, GetCounts, "
            "Reserve and Release to ads-frequency, ListCampaigns to ads-campaigns (the index's sync). "
            "FAILED_PRECONDITION is a refusal (a cap reached, a budget spent or paced), DEADLINE_EXCEEDED or "
            "UNAVAILABLE a dependency that did not answer in the decision's budget.", "reqps",
            [query(rate("casemesh_ads_server_dependency_calls_total", jobs, ("method", "code")),
                   "{{method}} {{code}}")], width=8, stacked=True))
    )
    board = (
        board.with_row(Row("Frequency caps (seed 001 #15: \"frequency caps\"): reserved atomically per user and "
                           "campaign"))
        .with_panel(timeseries_panel(
            "Reserves by outcome",
            "FrequencyService/Reserve's answers per second (casemesh_ads_frequency_reserves_total): reserved (durable "
            "before the answer), capped (the user's count within the window reached the cap: FAILED_PRECONDITION "
            "frequency_capped), repeated (an impression ID reserved already), key_reused, unavailable (the write "
            "failed); and reservations released (casemesh_ads_frequency_releases_total: an attempt whose charge was "
            "refused).", "ops",
            refs([(rate(RESERVES, jobs, ("outcome",)), "{{outcome}}"),
                  (rate("casemesh_ads_frequency_releases_total", jobs), "released")]), width=12))
        .with_panel(timeseries_panel(
            "Users and impressions tracked",
            "Users with at least one impression within its window in memory (casemesh_ads_frequency_users: "
            "pseudonymous keys only) and those impressions (casemesh_ads_frequency_reservations).", "short",
            refs([(f"sum(casemesh_ads_frequency_users{jobs})", "users"),
                  (f"sum(casemesh_ads_frequency_reservations{jobs})", "impressions")]), width=12, min_value=0))
    )
    board = (
        board.with_row(Row(f"Budgets and pacing (ads-pacing.slo.yaml: {lasts.target:.0%} of budgets run out with at "
                           f"most {day_left:.0%} of the day left; ads-budget.pacing)"))
        .with_panel(timeseries_panel(
            "Charges by outcome",
            "BudgetService/Charge's answers per second (casemesh_ads_budget_charges_total): charged (taken, durable "
            "before the answer), budget_exhausted (the day's spend plus the price would pass the daily budget: zero "
            "tolerance), paced (even pacing: ahead of an even spread of the budget over the day by more than "
            "pacing_slack), paused (the campaign is paused), repeated (an impression charged or refused already: "
            "its first answer).", "ops",
            [query(rate(CHARGES, jobs, ("outcome",)), "{{outcome}}")], width=8, stacked=True))
        .with_panel(timeseries_panel(
            "Pacing throttles and spend",
            "Charges refused by pacing per second though the budget would have allowed them "
            "(casemesh_ads_budget_pacing_throttles_total: none with ads-budget.pacing=false, accelerated delivery), "
            "and the spend rate in minor units per second over all campaigns "
            "(casemesh_ads_budget_spent_milli_minor_total / 1000). The SLO ads-budgets-last-the-day is the harness's "
            "(each exhausted budget's share of the day left, from GetSpend): the harness dashboard draws it.", "short",
            refs([(rate("casemesh_ads_budget_pacing_throttles_total", jobs), "pacing throttles /s"),
                  (f"{rate('casemesh_ads_budget_spent_milli_minor_total', jobs)} / 1000", "spend (minor units/s)")]),
            width=8, min_value=0))
        .with_panel(timeseries_panel(
            "Exhausted campaigns",
            "Campaigns whose bid no longer fits in today's budget (casemesh_ads_budget_exhausted_campaigns; reset "
            "at each day's start), out of the campaigns ads-budget follows (casemesh_ads_budget_campaigns), and its "
            "failed ListCampaigns polls (casemesh_ads_budget_sync_errors_total).", "short",
            refs([(f"sum(casemesh_ads_budget_exhausted_campaigns{jobs})", "exhausted today"),
                  (f"sum(casemesh_ads_budget_campaigns{jobs})", "campaigns followed"),
                  (rate("casemesh_ads_budget_sync_errors_total", jobs), "sync errors /s")]), width=8, min_value=0))
    )
    board = (
        board.with_row(Row("Campaigns and the ad server's targeting index"))
        .with_panel(timeseries_panel(
            "Campaigns by state",
            "Stored campaigns by state (casemesh_ads_campaigns_campaigns: active, paused) and durable writes per "
            "second (casemesh_ads_campaigns_writes_total: create, state; idempotent repeats write nothing).",
            "short",
            refs([(f"sum by (state) (casemesh_ads_campaigns_campaigns{jobs})", "{{state}}"),
                  (rate("casemesh_ads_campaigns_writes_total", jobs, ("kind",)), "{{kind}} writes /s")]),
            width=8, min_value=0))
        .with_panel(timeseries_panel(
            "Targeting index",
            "Active campaigns in ads-server's targeting index (casemesh_ads_server_index_campaigns) against the "
            "active campaigns stored (casemesh_ads_campaigns_campaigns{state=\"active\"}): the index follows "
            "ListCampaigns every sync_interval_ms.", "short",
            refs([(f"sum(casemesh_ads_server_index_campaigns{jobs})", "in the index"),
                  (f"sum(casemesh_ads_campaigns_campaigns{active})", "active stored")]),
            width=8, min_value=0))
        .with_panel(timeseries_panel(
            "Index version behind the store",
            "The campaigns' version ads-server's index is at (casemesh_ads_server_index_version) and the store's "
            "(casemesh_ads_campaigns_version): a gap that stays is an index not following (failed polls: "
            "casemesh_ads_server_sync_failures_total, per second).", "short",
            refs([(f"max(casemesh_ads_campaigns_version{jobs})", "store version"),
                  (f"max(casemesh_ads_server_index_version{jobs})", "index version"),
                  (rate("casemesh_ads_server_sync_failures_total", jobs), "sync failures /s")]),
            width=8, min_value=0))
    )
    first = selector(JOB, 'first="true"')
    board = (
        board.with_row(Row("Clicks"))
        .with_panel(timeseries_panel(
            "Clicks",
            "RecordClick's answers per second (casemesh_ads_server_clicks_total): first (an impression's first "
            "click, durable in ads-server's log) and repeated (first=\"false\").", "ops",
            [query(rate(CLICKS, jobs, ("first",)), "first={{first}}")], width=12, stacked=True))
        .with_panel(timeseries_panel(
            "Click-through rate",
            "First clicks (casemesh_ads_server_clicks_total{first=\"true\"}) over the ads served "
            "(casemesh_ads_server_decisions_total{outcome=\"served\"}).", "percentunit",
            [query(f"{rate(CLICKS, first)} / {rate(DECISIONS, served)}", "CTR")], width=12, min_value=0))
    )
    board = board.with_row(Row("Group commits: every write durable (fsynced) before its answer"))
    board = (
        board.with_panel(timeseries_panel(
            "Group commit time",
            "One group commit to each service's SQLite file, fsync included (casemesh_ads_<service>_commit_seconds), "
            "p99 and mean: ads-campaigns' campaigns, ads-budget's charges, ads-frequency's reservations, "
            "ads-server's impressions and clicks. A served decision waits for three of them in series.", "s",
            refs([expr for store in STORES for expr in (
                (quantile(0.99, f"casemesh_ads_{store}_commit_seconds", jobs), f"{store} p99"),
                (mean(f"casemesh_ads_{store}_commit_seconds", jobs), f"{store} mean"))]), width=12))
        .with_panel(timeseries_panel(
            "Writes per commit",
            "Writes sharing one fsync, on average, per store (casemesh_ads_<service>_writes_per_commit).", "short",
            refs([(mean(f"casemesh_ads_{store}_writes_per_commit", jobs), store) for store in STORES]),
            width=12, min_value=0))
    )
    calls = selector(JOB, ADS_SERVICES)
    board = (
        board.with_row(Row("gRPC per ad service"))
        .with_panel(timeseries_panel(
            "Request rate", "Calls handled per second by each ads method: AdService (Decide, RecordClick) in "
            "ads-server; CampaignService in ads-campaigns (ListCampaigns: the index's and the budget's polls); "
            "BudgetService (CheckEligibility and Charge: ads-server's; GetSpend: advertisers') in ads-budget; "
            "FrequencyService (GetCounts, Reserve, Release: ads-server's) in ads-frequency.", "reqps",
            [query(rate(HANDLED, calls, ("grpc_service", "grpc_method")), "{{grpc_service}}/{{grpc_method}}")],
            width=8))
        .with_panel(timeseries_panel(
            "Errors by code", "Failed calls per second (codes other than OK, NotFound, InvalidArgument, "
            "AlreadyExists). Charge's and Reserve's FailedPrecondition are refusals (budget_exhausted, paced, paused; "
            "frequency_capped); Decide's Unavailable a dependency that did not answer within its budget.", "reqps",
            [query(rate(HANDLED, selector(JOB, ADS_SERVICES, ERROR_CODES_MATCHER), ("grpc_method", "grpc_code")),
                   "{{grpc_method}} {{grpc_code}}")], width=8, stacked=True))
        .with_panel(timeseries_panel(
            "p99 duration", "99th percentile server handling time per method. Dots are exemplars.", "s",
            [query(quantile(0.99, HANDLING, calls, ("grpc_service", "grpc_method")),
                   "{{grpc_service}}/{{grpc_method}}", exemplar=True)],
            width=8))
    )
    return board
