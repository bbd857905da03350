"""The banking workload's parameters (the bank's customers and their accounts, the end-of-run reconciliation) and its
seeding through the public API (TransferService.OpenAccount with an initial deposit).

Seed 001 #14 "Online Banking" (shared/seeds/001_58dfc580020147d2.txt line 39: "| 14 | Online Banking | Double-entry
ledger, ACID transactions, fraud detection, reconciliation | 100M accounts, Chase/Wells Fargo |"). Every account is
opened in one currency (``currency``, USD) through TransferService.OpenAccount, as a customer opening an account online
does, with its first deposit in the same call (transfers.proto: the deposit is keyed ``open:<account_id>``, so a retry
deposits nothing twice). Four populations, each with its own id prefix under the run's (``bk<run>``, 8 hex digits,
the first draw of the run's generator, so a data directory kept from an earlier run shares no account with this one):

- **customers** (``bk<run>-c<i>``, ``customers``): people who transfer, pay bills and check their balance. Opening
  deposits are lognormal around ``deposit_median_minor`` (``deposit_sigma``, clipped to ``deposit_min_minor`` ..
  ``deposit_max_minor``): most hold a few thousand dollars, a few hold much more or very little, so some transfers
  and some bill runs meet insufficient funds. Their order is their popularity as payees (:mod:`.journeys`: Zipf over
  the rank);
- **hot accounts** (``bk<run>-h<i>``, ``hot_accounts``): billers and shops (a utility, a card issuer, a landlord, a
  phone company) that every customer's bills and a share of its transfers pay: the accounts many concurrent entries
  credit, opened empty;
- **takeover victims** (``bk<run>-v<i>``, ``victims``): customers whose credentials a fraudster holds
  (``account_takeover``), deposits lognormal around ``victim_deposit_median_minor`` (``victim_deposit_sigma``, the
  same clip): savings many times banking-transfers' daily limit (10,000.00), so that the fraud rules, not the
  balance, stand between the fraudster and the money. Kept apart from the customers, so that the fraud rules' memory
  of a burst (velocity window, daily total) never declines an ordinary customer's transfer;
- **mules** (``bk<run>-m<i>``, ``mules``): the fraudster's payees, accounts the victims never paid, opened empty.

What is drawn, in order, from the run's generator: the run prefix, then each customer's deposit, then each victim's.
OpenAccount goes ``open_concurrency`` calls in flight; a call answered UNAVAILABLE or DEADLINE_EXCEEDED is sent again
(opening an open account with the same owner and currency returns it; the deposit's key makes it once), up to
:data:`SEED_ATTEMPTS` times, 100 ms doubling between; any other refusal fails the seeding with its status. An answer
whose balance is not the deposit is logged: the end-of-run check (:mod:`.live`) then finds the account off.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from dataclasses import dataclass, field

import grpc
from pydantic import Field, field_validator, model_validator

from casemesh.banking.v1 import transfers_pb2
from casemesh.common.v1 import money_pb2
from casemesh.services.banking.contract import MAX_AMOUNT_MINOR, is_currency_code

from ..base import Caller, Params

log = logging.getLogger("casemesh.workloads.banking")

LEDGER = "banking-ledger"
TRANSFERS = "banking-transfers"

#: Attempts of a seeding call answered with one of :data:`RETRIED` (the service busy or restarting).
SEED_ATTEMPTS = 5
RETRIED = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


class SeedParams(Params):
    """The bank's accounts and the end-of-run reconciliation (defaults: the ``banking`` profile's)."""

    currency: str = Field(default="USD", description="every account's currency (ISO 4217)")
    customers: int = Field(default=5_000, ge=2, le=1_000_000, description="customer accounts")
    deposit_median_minor: int = Field(default=300_000, ge=1, le=MAX_AMOUNT_MINOR,
                                      description="median opening deposit, minor units (300,000: 3,000.00)")
    deposit_sigma: float = Field(default=1.0, ge=0, le=5, description="the opening deposit's lognormal sigma")
    deposit_min_minor: int = Field(default=2_000, ge=0, le=MAX_AMOUNT_MINOR,
                                   description="smallest opening deposit, minor units")
    deposit_max_minor: int = Field(default=50_000_000, ge=0, le=MAX_AMOUNT_MINOR,
                                   description="largest opening deposit, minor units")
    victim_deposit_median_minor: int = Field(default=10_000_000, ge=1, le=MAX_AMOUNT_MINOR,
                                             description="median opening deposit of a takeover victim, minor units "
                                                         "(10,000,000: 100,000.00, ten times banking-transfers' daily "
                                                         "limit)")
    victim_deposit_sigma: float = Field(default=0.5, ge=0, le=5, description="a victim deposit's lognormal sigma")
    hot_accounts: int = Field(default=8, ge=1, le=1_000,
                              description="billers and shops that many customers pay (opened empty)")
    victims: int = Field(default=100, ge=1, le=100_000,
                         description="accounts whose owner's credentials a fraudster holds (account_takeover)")
    mules: int = Field(default=300, ge=1, le=100_000,
                       description="the fraudster's payee accounts (opened empty): at least a burst's transfers")
    open_concurrency: int = Field(default=32, ge=1, le=256, description="OpenAccount calls in flight while seeding")
    baseline_reconcile: bool = Field(default=True,
                                     description="reconcile once when the load processes connect (not recorded), so "
                                                 "that discrepancies an earlier run left in a kept data directory are "
                                                 "not blamed on this one")
    reconcile_timeout_s: float = Field(default=30.0, gt=0, le=600,
                                       description="deadline of one LedgerService.Reconcile call, s")
    reconcile_attempts: int = Field(default=3, ge=1, le=10,
                                    description="Reconcile calls at most (UNAVAILABLE or ABORTED: sent again after 1 s)")
    reconcile_delay_s: float = Field(default=2.0, ge=0, le=600,
                                     description="with --workers, the seconds load process 0 waits after its own "
                                                 "drain before its end-of-run check (the others' last journeys)")
    balance_read_concurrency: int = Field(default=16, ge=1, le=256,
                                          description="GetAccount calls in flight in the end-of-run balance check")

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if not is_currency_code(value):
            raise ValueError(f"{value!r} is not a currency code (three upper-case letters)")
        return value

    @model_validator(mode="after")
    def _deposits(self) -> SeedParams:
        for name in ("deposit_median_minor", "victim_deposit_median_minor"):
            if not self.deposit_min_minor <= getattr(self, name) <= self.deposit_max_minor:
                raise ValueError(f"deposit_min_minor ({self.deposit_min_minor}) <= {name} ({getattr(self, name)}) <= "
                                 f"deposit_max_minor ({self.deposit_max_minor}) must hold")
        return self


@dataclass(frozen=True)
class Opening:
    """An account to open: its id, its owner's name and its opening deposit (minor units)."""

    account_id: str
    owner: str
    deposit_minor: int


@dataclass
class State:
    """What the seeder made (picklable: sent to worker processes): the run's prefix, the currency, the accounts of each
    population with their opening deposits (minor units), customers in payee-popularity order."""

    run: str
    currency: str
    customers: list[str]
    hot: list[str]
    victims: list[str]
    mules: list[str]
    opening_minor: dict[str, int] = field(default_factory=dict)

    @property
    def accounts(self) -> list[str]:
        """Every account the run opened."""
        return [*self.customers, *self.hot, *self.victims, *self.mules]


def run_prefix(rng: random.Random) -> str:
    """The run's 8 hex digits, the first draw of the run's generator."""
    return f"{rng.getrandbits(32):08x}"


def draw_deposit(rng: random.Random, params: SeedParams, median_minor: int, sigma: float) -> int:
    """An opening deposit in minor units: lognormal around ``median_minor`` (``sigma``), clipped to ``params``'
    ``deposit_min_minor`` .. ``deposit_max_minor``."""
    value = round(rng.lognormvariate(math.log(median_minor), sigma))
    return min(max(value, params.deposit_min_minor), params.deposit_max_minor)


def plan(params: SeedParams, rng: random.Random) -> tuple[str, dict[str, list[Opening]]]:
    """The run prefix and the accounts to open per population (``customers``, ``hot``, ``victims``, ``mules``), drawn
    in a fixed order (module docstring): no call."""
    run = run_prefix(rng)
    base = f"bk{run}"
    customers = [Opening(f"{base}-c{i}", f"Customer {i}",
                         draw_deposit(rng, params, params.deposit_median_minor, params.deposit_sigma))
                 for i in range(params.customers)]
    victims = [Opening(f"{base}-v{i}", f"Customer v{i}",
                       draw_deposit(rng, params, params.victim_deposit_median_minor, params.victim_deposit_sigma))
               for i in range(params.victims)]
    hot = [Opening(f"{base}-h{i}", f"Biller {i}", 0) for i in range(params.hot_accounts)]
    mules = [Opening(f"{base}-m{i}", f"Payee m{i}", 0) for i in range(params.mules)]
    return run, {"customers": customers, "hot": hot, "victims": victims, "mules": mules}


async def open_account(call: Caller, opening: Opening, currency: str) -> int:
    """TransferService.OpenAccount of ``opening`` (retried as the module docstring says); returns the answered balance
    in minor units."""
    request = transfers_pb2.TransferServiceOpenAccountRequest(
        account_id=opening.account_id, owner=opening.owner,
        initial_deposit=money_pb2.Money(currency_code=currency, amount_minor=opening.deposit_minor))
    for attempt in range(1, SEED_ATTEMPTS + 1):
        try:
            return (await call(TRANSFERS, "OpenAccount", request)).account.balance.amount_minor
        except grpc.aio.AioRpcError as error:
            if error.code() not in RETRIED or attempt == SEED_ATTEMPTS:
                raise
        await asyncio.sleep(0.1 * 2 ** (attempt - 1))
    raise AssertionError("unreachable")  # pragma: no cover


async def seed(call: Caller, params: SeedParams, rng: random.Random) -> State:
    """Open every account with its deposit (``open_concurrency`` in flight) and return the state."""
    run, populations = plan(params, rng)
    limit = asyncio.Semaphore(params.open_concurrency)

    async def one(opening: Opening) -> None:
        async with limit:
            balance = await open_account(call, opening, params.currency)
        if balance != opening.deposit_minor:
            log.warning("banking: OpenAccount %s with a deposit of %d answered a balance of %d", opening.account_id,
                        opening.deposit_minor, balance)

    openings = [o for population in populations.values() for o in population]
    await asyncio.gather(*(one(o) for o in openings))
    ids = {name: [o.account_id for o in population] for name, population in populations.items()}
    return State(run=run, currency=params.currency, customers=ids["customers"], hot=ids["hot"],
                 victims=ids["victims"], mules=ids["mules"],
                 opening_minor={o.account_id: o.deposit_minor for o in openings})
