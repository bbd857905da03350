"""hotel-booking's own metrics (``casemesh_hotel_booking_*``), seed 001 #20 (shared/seeds/001_58dfc580020147d2.txt
line 23: "Hotel Reservation | Pessimistic locking, overbooking prevention, payment auth/capture").

- ``casemesh_hotel_booking_bookings_total{outcome,reason}``: bookings decided (by a call or by the recovery; a replay
  is not counted again): ``outcome`` ``confirmed`` (``reason`` ``none``) or ``failed`` (``no_availability``,
  ``payment_declined``, ``contention``);
- ``casemesh_hotel_booking_conflict_retries`` (histogram): per booking, the HoldRooms retries after an ABORTED version
  conflict, observed when its hold step ends (held or failed): always 0 in the inventory's pessimistic lock mode,
  the visible effect of the optimistic one (the lock-mode A/B);
- ``casemesh_hotel_booking_step_seconds{step}`` (histogram): each saga step, whatever its outcome, in seconds:
  ``availability`` (GetAvailability), ``hold`` (HoldRooms with its conflict retries and backoff), ``authorize``,
  ``confirm`` (ConfirmHold), ``release_hold``, ``void``, ``capture``;
- ``casemesh_hotel_booking_compensations_total{kind}``: compensations of failed bookings done: ``release_hold`` (a
  declined payment), ``void_payment`` (a hold that expired before it was confirmed);
- ``casemesh_hotel_booking_cancellations_total``: bookings CANCELLED (rooms released, authorisation voided);
- ``casemesh_hotel_booking_check_ins_total``: bookings CHECKED_IN (payment captured);
- ``casemesh_hotel_booking_recovered_total{outcome}``: unfinished bookings, cancellations and check-ins the background
  recovery took up, by outcome: the status it left them in (``confirmed``, ``failed``, ``cancelled``,
  ``checked_in``), ``unavailable`` (a dependency still unreachable: left for the next look) or ``refused`` (logged,
  left as it was);
- ``casemesh_hotel_booking_idempotent_replays_total``: CreateBooking calls answered with the booking their key made;
- ``casemesh_hotel_booking_pending`` (gauge): bookings PENDING now (set from the store at start);
- ``casemesh_hotel_booking_dependency_calls_total{method,code}``: calls to hotel-inventory and payments-gateway by
  method (``HoldRooms``, ``Authorize``, ...) and gRPC status code (``OK``, ``ABORTED``, ``UNAVAILABLE``, ...);
- ``casemesh_hotel_booking_write_seconds`` (histogram): one group commit to the SQLite file, fsync included.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

BOOKINGS = Counter("casemesh_hotel_booking_bookings", "Bookings decided, by outcome and failure reason.",
                   ["outcome", "reason"])
#: Retries per booking: 0 (the pessimistic mode, or no race) up to the budget's ceiling (1,000).
RETRY_BUCKETS = (0, 1, 2, 3, 4, 6, 8, 12, 16, 32, 64)
CONFLICT_RETRIES = Histogram("casemesh_hotel_booking_conflict_retries", "HoldRooms retries after an ABORTED version "
                             "conflict, per booking.", buckets=RETRY_BUCKETS)
#: Seconds: a step is one call (milliseconds) or a hold with its backoff (up to about a second), tens of ms loaded.
STEP_BUCKETS = (0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
STEP_SECONDS = Histogram("casemesh_hotel_booking_step_seconds", "Saga steps, in seconds.", ["step"],
                         buckets=STEP_BUCKETS)
COMPENSATIONS = Counter("casemesh_hotel_booking_compensations", "Compensations of failed bookings, by kind.",
                        ["kind"])
CANCELLATIONS = Counter("casemesh_hotel_booking_cancellations", "Bookings cancelled.")
CHECK_INS = Counter("casemesh_hotel_booking_check_ins", "Bookings checked in (payment captured).")
RECOVERED = Counter("casemesh_hotel_booking_recovered", "Unfinished bookings taken up by the background recovery, "
                    "by outcome.", ["outcome"])
for _outcome in ("confirmed", "failed", "unavailable", "refused"):  # zero, not "No data", until the first recovery
    RECOVERED.labels(_outcome)
REPLAYS = Counter("casemesh_hotel_booking_idempotent_replays", "CreateBooking calls answered with the booking their "
                  "idempotency key made.")
PENDING = Gauge("casemesh_hotel_booking_pending", "Bookings PENDING now.")
DEPENDENCY_CALLS = Counter("casemesh_hotel_booking_dependency_calls", "Calls to hotel-inventory and payments-gateway "
                           "by method and status code.", ["method", "code"])
#: Seconds: a group commit with fsync takes about a millisecond on an SSD, tens on a loaded disk.
WRITE_BUCKETS = (0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
WRITE_SECONDS = Histogram("casemesh_hotel_booking_write_seconds", "One group commit to the bookings' SQLite file, "
                          "fsync included, in seconds.", buckets=WRITE_BUCKETS)

#: Failure reasons as ``casemesh_hotel_booking_bookings_total`` labels them (``BookingFailure`` names, lower case).
FAILURE_REASONS = ("no_availability", "payment_declined", "contention")
#: Compensation kinds of ``casemesh_hotel_booking_compensations_total``.
COMPENSATION_KINDS = ("release_hold", "void_payment")

# Every series exists from the start (at 0), so a dashboard's rate() sees the first booking of each kind.
BOOKINGS.labels("confirmed", "none")
for _reason in FAILURE_REASONS:
    BOOKINGS.labels("failed", _reason)
for _kind in COMPENSATION_KINDS:
    COMPENSATIONS.labels(_kind)
