"""Hotel reservation: CreateBooking against its 500 ms and its three nines, hotel pages (GetAvailability) against
200 ms, the booking saga (hold the rooms, authorise the card, confirm the hold; compensated in reverse) with its
cancellations, check-ins (the capture) and recovery, and the room inventory's isolation of concurrent holds: per
room-night pessimistic locks (the seed's) or an optimistic version check with the booking's retries (the A/B switch
``hotel-inventory.lock_mode``), never selling a night beyond its rooms, every write group-committed.

Case study: seed 001 #20, shared/seeds/001_58dfc580020147d2.txt line 23 ("| 20 | Hotel Reservation | Pessimistic
locking, overbooking prevention, payment auth/capture | 1M bookings/day, Booking.com |"); the optimistic alternative is
seed 003's version check (shared/seeds/003_1dfe16d8ccfde9ed.txt lines 1243-1265); the latency bounds are borrowed from
seed 000 line 513 ("Sub-200ms for search, 500ms for checkout"). Contracts in protos/casemesh/hotel/v1/, SLOs in
harness/profiles/hotel.slo.yaml (the server-side twins drawn here: hotel-booking-time-server,
hotel-booking-availability-server and hotel-search-latency-server; their targets are read from that file when the
dashboard is built).

Service metrics, as the hotel services expose them: ``casemesh_hotel_booking_bookings_total{outcome,reason}``
(``confirmed`` with ``none``; ``failed`` with ``no_availability``, ``payment_declined``, ``contention``),
``casemesh_hotel_booking_conflict_retries`` (HoldRooms retries per booking after a version conflict),
``casemesh_hotel_booking_step_seconds{step}`` (``availability``, ``hold``, ``authorize``, ``confirm``,
``release_hold``, ``void``, ``capture``), ``casemesh_hotel_booking_compensations_total{kind}`` (``release_hold``,
``void_payment``), ``casemesh_hotel_booking_cancellations_total``, ``casemesh_hotel_booking_check_ins_total``,
``casemesh_hotel_booking_recovered_total{outcome}`` (``confirmed``, ``failed``, ``cancelled``, ``checked_in``,
``unavailable``, ``refused``), ``casemesh_hotel_booking_idempotent_replays_total``, ``casemesh_hotel_booking_pending``,
``casemesh_hotel_booking_dependency_calls_total{method,code}``, ``casemesh_hotel_booking_write_seconds`` (hotel-booking,
services/hotel/booking/metrics.py); ``casemesh_hotel_inventory_holds_total{outcome}`` (``held``, ``no_availability``,
``conflict``, ``confirmed``, ``released``, ``expired``), ``casemesh_hotel_inventory_lock_wait_seconds`` (pessimistic
mode), ``casemesh_hotel_inventory_version_conflicts_total`` (optimistic mode),
``casemesh_hotel_inventory_write_seconds``, ``casemesh_hotel_inventory_commit_seconds``,
``casemesh_hotel_inventory_writes_per_commit``, ``casemesh_hotel_inventory_held_room_nights``,
``casemesh_hotel_inventory_booked_room_nights``, ``casemesh_hotel_inventory_room_types``,
``casemesh_hotel_inventory_lock_mode{lock_mode}`` (``pessimistic``, ``optimistic``) (hotel-inventory,
services/hotel/inventory/metrics.py); and the runtime's ``grpc_server_handled_total`` and
``grpc_server_handling_seconds`` of the hotel services (the twins of CreateBooking and GetAvailability). Only the gRPC
histograms carry exemplars.

``RoomInventoryService/Audit`` checks every room-night in memory and in the file (its time grows with the nights
written, once a run): it is left out of the gRPC duration and error panels. The payment gateway behind the bookings has
its own dashboard (payments.json).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from casemesh.harness.profile import PROFILES_DIR, SLO_FILE_SUFFIX

from .common import (
    ERROR_CODES_MATCHER, latency_panel, le, mean, new_dashboard, quantile, query, query_variable, rate, refs, selector,
    slo_targets, stat_panel, timeseries_panel, within,
)

UID = "casemesh-hotel"
BOOKING = "casemesh.hotel.v1.BookingService"
INVENTORY = "casemesh.hotel.v1.RoomInventoryService"
HANDLING = "grpc_server_handling_seconds"
HANDLED = "grpc_server_handled_total"
#: The hotel profile's SLOs: the targets drawn here are read from it (:func:`targets`).
SLO_FILE = PROFILES_DIR / f"hotel{SLO_FILE_SUFFIX}"
#: hotel-booking-time-server (hotel.slo.yaml): CreateBooking handled within 500 ms, a bucket of
#: grpc_server_handling_seconds.
BOOKING_S = 0.5
#: hotel-search-latency-server: GetAvailability handled within 200 ms.
SEARCH_S = 0.2
#: hotel-booking-availability-server: CreateBooking answered OK over every CreateBooking but ABORTED (a double click's
#: second send while the first is in flight, retried by the client).
NOT_ABORTED = 'grpc_code!="Aborted"'
BOOKINGS = "casemesh_hotel_booking_bookings_total"
HOLDS = "casemesh_hotel_inventory_holds_total"
RETRIES = "casemesh_hotel_booking_conflict_retries"
JOB = 'job=~"$job"'
HOTEL_SERVICES = r'grpc_service=~"casemesh\\.hotel\\.v1\\..+"'
#: The hotel services' jobs.
HOTEL_JOBS = r'{__name__="grpc_server_handled_total", grpc_service=~"casemesh\\.hotel\\.v1\\..+"}'
#: Audit reads every room-night in memory and in the file (drawn in the request rate only).
NOT_AUDIT = 'grpc_method!="Audit"'


def build() -> Dashboard:
    target = slo_targets(SLO_FILE)
    booking_target = target["hotel-booking-time-server"]
    answered_target = target["hotel-booking-availability-server"]
    search_target = target["hotel-search-latency-server"]
    jobs = selector(JOB)
    bookings = selector(JOB, f'grpc_service="{BOOKING}"', 'grpc_method="CreateBooking"')
    counted = selector(JOB, f'grpc_service="{BOOKING}"', 'grpc_method="CreateBooking"', NOT_ABORTED)
    answered = selector(JOB, f'grpc_service="{BOOKING}"', 'grpc_method="CreateBooking"', 'grpc_code="OK"')
    searches = selector(JOB, f'grpc_service="{INVENTORY}"', 'grpc_method="GetAvailability"')
    booking_ms, search_ms = f"{BOOKING_S * 1000:g} ms", f"{SEARCH_S * 1000:g} ms"
    board = (
        new_dashboard(UID, "casemesh / hotel reservation",
                      "The hotel reservation case study (Booking.com): CreateBooking against 500 ms and its three "
                      "nines, hotel pages against 200 ms, the booking saga (hold, authorise, confirm; cancellations "
                      "and check-ins), and the room inventory's pessimistic locks or optimistic version check (the "
                      "lock-mode A/B): no room-night sold twice.",
                      ["hotel"])
        .with_variable(query_variable("job", "Job", f"label_values({HOTEL_JOBS}, job)"))
    )
    board = (
        board.with_row(Row(f"Booking: {booking_target:.0%} within {booking_ms}, {answered_target:.1%} answered OK"))
        .with_panel(latency_panel(
            f"CreateBooking time vs {booking_ms}",
            "BookingService/CreateBooking handling time in hotel-booking (grpc_server_handling_seconds): the saga's "
            "calls (GetAvailability, HoldRooms with its conflict retries, Authorize at the payment gateway, "
            "ConfirmHold) and its fsyncs, per call. The dashed line is the SLO hotel-booking-time-server of "
            "hotel.slo.yaml (the server-side twin of hotel-booking-time: seed 000 line 513's \"500ms for "
            "checkout\", a booking being a hotel's checkout). Dots are exemplars.",
            HANDLING, bookings, (), "", width=6, threshold_s=BOOKING_S))
        .with_panel(timeseries_panel(
            f"Bookings within {booking_ms}",
            f"Share of CreateBooking calls handled within {booking_ms} (le=\"{le(BOOKING_S)}\" bucket over the count "
            f"of grpc_server_handling_seconds: hotel-booking-time-server); the dashed line is its target "
            f"{booking_target:g}.", "percentunit",
            [query(within(HANDLING, bookings, BOOKING_S), f"within {booking_ms}")],
            width=5, threshold_line=(booking_target, "red"), max_value=1))
        .with_panel(timeseries_panel(
            "CreateBooking answered OK",
            f"CreateBooking calls answered OK (confirmed or failed: a refusal is an answer) over all of them but "
            f"ABORTED (a double click's second send while the first is in flight, which the client retries): the "
            f"SLO hotel-booking-availability-server of hotel.slo.yaml; the dashed line is its target "
            f"{answered_target:g}.", "percentunit",
            [query(f"{rate(HANDLED, answered)} / {rate(HANDLED, counted)}", "answered OK")],
            width=5, threshold_line=(answered_target, "red"), max_value=1))
        .with_panel(stat_panel(
            "Answered OK over the range",
            f"Share of CreateBooking calls answered OK over the selected time range (ABORTED left out), against "
            f"{answered_target:g} (hotel-booking-availability-server).", "percentunit",
            [query(f"sum(increase({HANDLED}{answered}[$__range])) / sum(increase({HANDLED}{counted}[$__range]))",
                   instant=True)],
            width=3, height=8, base="red", steps=((answered_target, "green"),), decimals=4))
        .with_panel(stat_panel(
            f"Within {booking_ms} over the range",
            f"Share of CreateBooking calls handled within {booking_ms} over the selected time range, against "
            f"{booking_target:g} (hotel-booking-time-server).", "percentunit",
            [query(within(HANDLING, bookings, BOOKING_S, window="$__range"), instant=True)],
            width=5, height=8, base="red", steps=((booking_target, "green"),), decimals=3))
        .with_panel(latency_panel(
            f"GetAvailability time vs {search_ms}",
            "RoomInventoryService/GetAvailability handling time in hotel-inventory (grpc_server_handling_seconds): "
            "an in-memory read without locks, so what it shows is the inventory's event loop under the holds' "
            "commits; the guests' hotel pages and hotel-booking's own look alike. The dashed line is the SLO "
            "hotel-search-latency-server of hotel.slo.yaml (seed 000 line 513's \"Sub-200ms for search\"). Dots are "
            "exemplars.", HANDLING, searches, (), "", width=8, threshold_s=SEARCH_S))
        .with_panel(timeseries_panel(
            f"Availability reads within {search_ms}",
            f"Share of GetAvailability calls handled within {search_ms} (le=\"{le(SEARCH_S)}\" bucket over the "
            f"count of grpc_server_handling_seconds: hotel-search-latency-server); the dashed line is its target "
            f"{search_target:g}.", "percentunit",
            [query(within(HANDLING, searches, SEARCH_S), f"within {search_ms}")],
            width=8, threshold_line=(search_target, "red"), max_value=1))
        .with_panel(stat_panel(
            f"Availability reads within {search_ms} over the range",
            f"Share of GetAvailability calls handled within {search_ms} over the selected time range, against "
            f"{search_target:g} (hotel-search-latency-server).", "percentunit",
            [query(within(HANDLING, searches, SEARCH_S, window="$__range"), instant=True)],
            width=8, height=8, base="red", steps=((search_target, "green"),), decimals=3))
    )
    failed = selector(JOB, 'outcome="failed"')
    board = (
        board.with_row(Row("The booking saga: hold the rooms, authorise the card, confirm the hold (seed 001 #20: "
                           "\"payment auth/capture\")"))
        .with_panel(timeseries_panel(
            "Bookings by outcome and failure reason",
            "Bookings decided per second, once each (casemesh_hotel_booking_bookings_total; by a call or by the "
            "recovery, replays not counted again): confirmed, or failed for no_availability (a night had fewer "
            "rooms left, or the hold ran out before it was confirmed), payment_declined (the issuer, the fraud "
            "rules, an unknown card token), contention (the optimistic mode's version races lost past "
            "max_conflict_retries). A failed booking is an answer.", "ops",
            [query(rate(BOOKINGS, jobs, ("outcome", "reason")), "{{outcome}} {{reason}}")], width=6, stacked=True))
        .with_panel(timeseries_panel(
            "Failed share",
            "Decided bookings failed, over all decided (casemesh_hotel_booking_bookings_total).", "percentunit",
            [query(f"{rate(BOOKINGS, failed)} / {rate(BOOKINGS, jobs)}", "failed")], width=4, max_value=1))
        .with_panel(latency_panel(
            "Saga step time",
            "Each saga step, whatever its outcome (casemesh_hotel_booking_step_seconds), by step: availability "
            "(GetAvailability: the total), hold (HoldRooms with its conflict retries and their backoff), authorize "
            "(the payment gateway: the simulated issuer's round trip), confirm (ConfirmHold), and the "
            "compensations and later steps: release_hold, void, capture (at check-in).",
            "casemesh_hotel_booking_step_seconds", jobs, ("step",), "{{step}}", quantiles=(0.5, 0.99), width=8))
        .with_panel(timeseries_panel(
            "Compensations, cancellations, check-ins",
            "Per second: compensations of failed bookings (casemesh_hotel_booking_compensations_total: "
            "release_hold after a declined payment, void_payment after a hold that ran out before its "
            "confirmation), bookings cancelled (casemesh_hotel_booking_cancellations_total: rooms released, "
            "authorisation voided) and checked in (casemesh_hotel_booking_check_ins_total: the authorisation "
            "captured).", "ops",
            refs([(rate("casemesh_hotel_booking_compensations_total", jobs, ("kind",)), "compensated {{kind}}"),
                  (rate("casemesh_hotel_booking_cancellations_total", jobs), "cancelled"),
                  (rate("casemesh_hotel_booking_check_ins_total", jobs), "checked in")]), width=6))
    )
    retried = selector(JOB)
    no_retry = selector(JOB, f'le="{le(0)}"')
    board = (
        board.with_row(Row("Isolation of concurrent holds: pessimistic locks or optimistic version checks "
                           "(hotel-inventory.lock_mode)"))
        .with_panel(stat_panel(
            "Lock mode",
            "The lock mode each hotel-inventory runs (casemesh_hotel_inventory_lock_mode: 1 for the mode in use): "
            "pessimistic (the seed's \"Pessimistic locking\": per room-night locks in date order, held until the "
            "hold is durable) or optimistic (seed 003's version check: no locks, a hold whose nights moved since "
            "its read is refused ABORTED and retried by hotel-booking). The A/B switch "
            "hotel-inventory.lock_mode.", "short",
            [query(f"max by (lock_mode) (casemesh_hotel_inventory_lock_mode{jobs})", "{{lock_mode}}", instant=True)],
            width=4, height=8, base="text", steps=((1, "green"),)))
        .with_panel(latency_panel(
            "Lock wait (pessimistic)",
            "From a hold's, confirmation's, release's or expiry's first room-night lock request until it holds "
            "every lock of its nights (casemesh_hotel_inventory_lock_wait_seconds, pessimistic mode only): holds of "
            "the same nights queue one fsync each; holds of other nights do not wait.",
            "casemesh_hotel_inventory_lock_wait_seconds", jobs, (), "", quantiles=(0.5, 0.99), width=5))
        .with_panel(timeseries_panel(
            "Version conflicts (optimistic)",
            "Writes the version check refused per second (casemesh_hotel_inventory_version_conflicts_total, "
            "optimistic mode only: a night's version moved between a hold's read and its write), and holds answered "
            "ABORTED for it (casemesh_hotel_inventory_holds_total{outcome=\"conflict\"}): nothing held, the booking "
            "retries.", "ops",
            refs([(rate("casemesh_hotel_inventory_version_conflicts_total", jobs), "version conflicts"),
                  (rate(HOLDS, selector(JOB, 'outcome="conflict"')), "holds aborted")]), width=5))
        .with_panel(timeseries_panel(
            "Conflict retries per booking",
            f"HoldRooms retries after an ABORTED version conflict, per booking, observed when its hold step ends "
            f"(casemesh_hotel_booking_conflict_retries): always 0 in the pessimistic mode, the visible cost of the "
            f"optimistic one under contention (the lock-mode A/B); past max_conflict_retries the booking fails "
            f"contention. The share of bookings that retried at all is the le=\"{le(0)}\" bucket's complement.",
            "short",
            refs([(quantile(0.99, RETRIES, retried), "p99"),
                  (mean(RETRIES, retried), "mean"),
                  (f"1 - {rate(f'{RETRIES}_bucket', no_retry)} / {rate(f'{RETRIES}_count', retried)}",
                   "share that retried")]),
            width=5, min_value=0))
        .with_panel(timeseries_panel(
            "Holds by outcome",
            "What became of holds per second (casemesh_hotel_inventory_holds_total): held (HoldRooms took the rooms "
            "on every night, all or none), no_availability (refused: a night had fewer rooms than asked, "
            "overbooking prevented), conflict (optimistic mode: ABORTED by the version check), confirmed, released "
            "(a failed or cancelled booking), expired (the hold's TTL ran out).", "ops",
            [query(rate(HOLDS, jobs, ("outcome",)), "{{outcome}}")], width=5, stacked=True))
    )
    board = (
        board.with_row(Row("Room-nights: held and booked, never beyond the sellable rooms; one fsync per group commit"))
        .with_panel(timeseries_panel(
            "Held and booked room-nights",
            "Rooms held by HELD holds and rooms booked by confirmed ones, summed over all nights "
            "(casemesh_hotel_inventory_held_room_nights, casemesh_hotel_inventory_booked_room_nights), and the room "
            "types on sale (casemesh_hotel_inventory_room_types).", "short",
            refs([(f"sum(casemesh_hotel_inventory_held_room_nights{jobs})", "held room-nights"),
                  (f"sum(casemesh_hotel_inventory_booked_room_nights{jobs})", "booked room-nights"),
                  (f"sum(casemesh_hotel_inventory_room_types{jobs})", "room types")]), width=6, min_value=0))
        .with_panel(latency_panel(
            "Inventory write time",
            "From an inventory write's submission to its durable commit, the wait for the group commit included "
            "(casemesh_hotel_inventory_write_seconds): a pessimistic hold keeps its nights locked this long.",
            "casemesh_hotel_inventory_write_seconds", jobs, (), "", quantiles=(0.5, 0.99), width=6))
        .with_panel(latency_panel(
            "Group commit time",
            "One group commit to the inventory's SQLite file, fsync included "
            "(casemesh_hotel_inventory_commit_seconds).",
            "casemesh_hotel_inventory_commit_seconds", jobs, (), "", quantiles=(0.5, 0.99), width=6))
        .with_panel(timeseries_panel(
            "Writes per commit",
            "Writes (holds, confirmations, releases, expiries, room types) per group commit "
            "(casemesh_hotel_inventory_writes_per_commit): how many share one fsync. Pessimistic holds of the same "
            "nights never share one (each waits for the one before); optimistic ones do, and race in it.", "short",
            refs([(quantile(0.5, "casemesh_hotel_inventory_writes_per_commit", jobs), "p50"),
                  (quantile(0.99, "casemesh_hotel_inventory_writes_per_commit", jobs), "p99"),
                  (mean("casemesh_hotel_inventory_writes_per_commit", jobs), "mean")]), width=6))
    )
    board = (
        board.with_row(Row("Bookings: PENDING before the first step, one booking per key, the recovery"))
        .with_panel(timeseries_panel(
            "Bookings pending",
            "Bookings PENDING now (casemesh_hotel_booking_pending): in their saga, or left by a step whose service "
            "did not answer (the call answered UNAVAILABLE) until the guest's retry with the same key or the "
            "recovery finishes or compensates them.", "short",
            [query(f"sum(casemesh_hotel_booking_pending{jobs})", "pending")], width=4, min_value=0))
        .with_panel(timeseries_panel(
            "Recovered by outcome",
            "Unfinished bookings, cancellations and check-ins the background recovery took up per second, "
            "recovery_grace_s after their last write (casemesh_hotel_booking_recovered_total), by the status it left "
            "them in (confirmed, failed, cancelled, checked_in), or unavailable (a dependency still unreachable: "
            "left for the next look), refused (logged, left as it was).", "ops",
            [query(rate("casemesh_hotel_booking_recovered_total", jobs, ("outcome",)), "{{outcome}}")],
            width=5, stacked=True))
        .with_panel(timeseries_panel(
            "Replays and key conflicts",
            "CreateBooking calls answered with the booking their idempotency key made "
            "(casemesh_hotel_booking_idempotent_replays_total: a retry gets the same booking), and BookingService "
            "calls refused per second: Aborted (a call with the same key in flight: a double click, retried by the "
            "client), FailedPrecondition (the key used for a different request; a cancellation or check-in of a "
            "booking not CONFIRMED).", "ops",
            refs([(rate("casemesh_hotel_booking_idempotent_replays_total", jobs), "replayed"),
                  (rate(HANDLED, selector(JOB, f'grpc_service="{BOOKING}"', 'grpc_code=~"Aborted|FailedPrecondition"'),
                        ("grpc_method", "grpc_code")), "{{grpc_method}} {{grpc_code}}")]), width=5))
        .with_panel(timeseries_panel(
            "Dependency calls by code",
            "hotel-booking's calls to hotel-inventory (GetAvailability, HoldRooms, ConfirmHold, ReleaseHold) and "
            "payments-gateway (Authorize, Capture, Void) per second, by method and status code "
            "(casemesh_hotel_booking_dependency_calls_total): ABORTED is a HoldRooms that lost a version race "
            "(retried), FAILED_PRECONDITION a refusal (no_availability, hold_expired), UNAVAILABLE or "
            "DEADLINE_EXCEEDED a dependency that did not answer (the booking stays PENDING).", "reqps",
            [query(rate("casemesh_hotel_booking_dependency_calls_total", jobs, ("method", "code")),
                   "{{method}} {{code}}")], width=5, stacked=True))
        .with_panel(latency_panel(
            "Bookings' group commit",
            "One group commit to hotel-booking's SQLite file, fsync included (casemesh_hotel_booking_write_seconds): "
            "every step's outcome is durable before the next step is taken.",
            "casemesh_hotel_booking_write_seconds", jobs, (), "", quantiles=(0.5, 0.99), width=5))
    )
    calls = selector(JOB, HOTEL_SERVICES)
    board = (
        board.with_row(Row("gRPC per hotel service"))
        .with_panel(timeseries_panel(
            "Request rate", "Calls handled per second by each hotel method. HoldRooms, ConfirmHold and ReleaseHold "
            "of RoomInventoryService are hotel-booking's calls; GetAvailability the guests' pages and "
            "hotel-booking's.", "reqps",
            [query(rate(HANDLED, calls, ("grpc_service", "grpc_method")), "{{grpc_service}}/{{grpc_method}}")],
            width=8))
        .with_panel(timeseries_panel(
            "Errors by code", "Failed calls per second (codes other than OK, NotFound, InvalidArgument, "
            "AlreadyExists); Audit left out. HoldRooms' FailedPrecondition is no_availability, its Aborted a lost "
            "version race (optimistic mode); CreateBooking's Aborted a double click, FailedPrecondition a key "
            "reused; Unavailable a dependency down.", "reqps",
            [query(rate(HANDLED, selector(JOB, HOTEL_SERVICES, NOT_AUDIT, ERROR_CODES_MATCHER),
                        ("grpc_method", "grpc_code")), "{{grpc_method}} {{grpc_code}}")], width=8, stacked=True))
        .with_panel(timeseries_panel(
            "p99 duration", "99th percentile server handling time per method, Audit left out. Dots are exemplars.",
            "s",
            [query(quantile(0.99, HANDLING, selector(JOB, HOTEL_SERVICES, NOT_AUDIT),
                            ("grpc_service", "grpc_method")), "{{grpc_service}}/{{grpc_method}}", exemplar=True)],
            width=8))
    )
    return board
