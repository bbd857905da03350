"""The card issuer behind a simulated acquirer, and the per-reference serialisation of Authorize and Void.

Seed 001 #25 (shared/seeds/001_58dfc580020147d2.txt line 49, "Payment Gateway": PSP routing, settlement; Stripe/
Adyen). An acquirer forwards each authorization through the card network to the card's issuer, which holds the
amount or declines it. :class:`Issuer` stands in for that round trip:

- its latency: a lognormal draw (median ``latency_median_ms``, log-sd ``latency_sigma``; :meth:`Issuer.latency_s`),
  waited out (:meth:`Issuer.round_trip`) *before* the decision, as the network is crossed before the issuer answers;
- its decision (:meth:`Issuer.decide`): the test cards (services/payments/contract.py ``TEST_CARDS``, Stripe's test
  numbers) declined with their own code; an expired card ``expired_card``; any other card declined with probability
  ``decline_rate`` (``do_not_honor`` or ``insufficient_funds``, evenly), approved otherwise.

The random draws come from an injectable ``random.Random`` (a seed replays a run), the wait from an injectable
``sleep`` (tests interleave it as they please).

The service's :class:`~services.runtime.keyed_locks.KeyedLocks` (at most ``max_references_locked`` references)
serialises the decision and the ledger write of an Authorize with a Void of the same reference: one asyncio lock per reference, made on first use and dropped once nobody holds or waits for it. The
Authorize waits its issuer round trip *before* it takes the lock, so a Void that arrives meanwhile (the gateway gave up
on the authorization: its deadline passed) takes the lock first, records the reference VOIDED, and the Authorize,
once it holds the lock, finds that and is refused (FAILED_PRECONDITION): nothing is held.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from ..contract import TEST_CARDS, expired
from .settings import AcquirerSettings

#: The codes of a random decline, drawn evenly.
RANDOM_DECLINE_CODES = ("do_not_honor", "insufficient_funds")
EXPIRED_CARD = "expired_card"


@dataclass(frozen=True, slots=True)
class Decision:
    """The issuer's answer: ``approved``, else ``decline_code`` says why."""

    approved: bool
    decline_code: str = ""


APPROVED = Decision(True)


class Issuer:
    """The simulated issuer of one acquirer: :meth:`latency_s` and :meth:`round_trip` (the wait), :meth:`decide`.

    ``rng`` draws the latency and the random declines (``random.Random(settings.issuer_seed)`` by default);
    ``sleep(seconds)`` waits (``asyncio.sleep`` by default).
    """

    def __init__(self, settings: AcquirerSettings, rng: random.Random | None = None,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        self.settings = settings
        self.rng = rng if rng is not None else random.Random(settings.issuer_seed)
        self._sleep = sleep
        self._mu = math.log(settings.latency_median_ms / 1000) if settings.latency_median_ms > 0 else None

    def latency_s(self) -> float:
        """One issuer round trip, in seconds: lognormal with median ``latency_median_ms`` and log-sd
        ``latency_sigma``; 0 when the median is 0."""
        if self._mu is None:
            return 0.0
        return self.rng.lognormvariate(self._mu, self.settings.latency_sigma)

    async def round_trip(self) -> float:
        """Draw a round trip (:meth:`latency_s`) and wait it out (no wait at all when it is 0); returns it, in
        seconds."""
        latency_s = self.latency_s()
        if latency_s > 0:
            await self._sleep(latency_s)
        return latency_s

    def decide(self, card_number: str, exp_month: int, exp_year: int, now: datetime | None = None) -> Decision:
        """The issuer's decision on a card (a valid PAN and expiry): a test card's code, ``expired_card`` when the
        expiry (end of ``exp_month``/``exp_year``, UTC, at ``now``) is past, a random decline with probability
        ``decline_rate``, else approved."""
        code = TEST_CARDS.get(card_number)
        if code is not None:
            return Decision(False, code)
        if expired(exp_month, exp_year, now):
            return Decision(False, EXPIRED_CARD)
        if self.settings.decline_rate > 0 and self.rng.random() < self.settings.decline_rate:
            return Decision(False, self.rng.choice(RANDOM_DECLINE_CODES))
        return APPROVED


class TooManyReferences(Exception):
    """Every one of ``max_references_locked`` locks is taken: UNAVAILABLE, nothing processed."""

    def __init__(self, locked: int) -> None:
        super().__init__(f"{locked} references are being decided, the most this acquirer allows "
                         "(max_references_locked): nothing was processed, try again or elsewhere")
