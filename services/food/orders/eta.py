"""The ETA model: the promised delivery time of an order, from a linear regression fitted at start.

Seed 001 #13 (shared/seeds/001_58dfc580020147d2.txt line 38, "Food Delivery": "Regional dispatch, ML ETA, adaptive
telemetry, surge pricing"). Said plainly: this is **not a trained production model**. There is no delivery history
to learn from here, so at start the service draws a synthetic one (``eta_history_size`` deliveries from a fixed
seed) out of the same speed model the simulated city runs on, and fits an ordinary least-squares regression to it
(``numpy.linalg.lstsq``). What it shows is the mechanism (features per order, a model fitted on past deliveries, a
promise with a quantile margin, the promise's error measured at each delivery), not learning from real data.

Features of an order (:class:`EtaFeatures`, computed by :class:`CityModel`):

- ``kitchen_wait_s``: the kitchen's ready time minus the placing time (RestaurantService.PrepareOrder's
  ``ready_at``), seconds;
- ``trip_m``: restaurant to door, great-circle metres (``h3.great_circle_distance``) × ``detour_factor``;
- ``approach_s``: the courier's expected approach: ``assign_delay_s`` plus the expected drive to the restaurant
  from the region's supply: with n AVAILABLE couriers spread over a region of area A (H3 at the surge resolution),
  the nearest is on average 0.5·√(A/n) away (the mean nearest-neighbour distance of a planar Poisson process), at
  most ``eta_approach_max_m`` (also with none); ``eta_approach_m`` when the supply is not known.

The regression's columns are those three, an intercept, and ``courier_late_s`` = max(0, approach_s −
kitchen_wait_s): dispatch sends couriers so as to arrive when the food is ready, and only when the kitchen is
quicker than the approach does the courier delay the order (a hinge, so that a linear model can fit the max of
the two). Target: seconds from placing to delivery.

The synthetic history (:func:`synthetic_history`): kitchen waits uniform on [0, ``eta_history_max_kitchen_s``],
trips uniform on [0, ``eta_history_max_trip_m``] great-circle, region supply uniform on [0,
``eta_history_max_supply``]; the courier's actual approach is Rayleigh-distributed around its expectation (the
nearest-neighbour distance's law); the courier is at the restaurant at max(kitchen wait, lead + approach drive),
loses an exponential ``pickup_wait_s`` there and at the door, drives the trip at ``courier_speed_mps``, plus
Gaussian noise of ``eta_noise_s``.

The promise is the prediction plus a margin: the ``promise_quantile`` (0.9) of the fit's residuals (or a fixed
``promise_margin_s``), so that about that share of orders is delivered on time while the system keeps up; when
couriers run short (demand beyond the history's supply model), the share of late orders shows it
(``casemesh_food_orders_on_time_total{outcome}`` and ``casemesh_food_orders_lateness_seconds``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import h3
import numpy as np

#: The regression's columns, in order.
FEATURES = ("intercept", "kitchen_wait_s", "trip_m", "approach_s", "courier_late_s")


@dataclass(frozen=True, slots=True)
class EtaFeatures:
    """One order's features: the kitchen wait (s), the trip (road metres), the courier's expected approach (s)."""

    kitchen_wait_s: float
    trip_m: float
    approach_s: float

    def row(self) -> list[float]:
        """The regression's row (:data:`FEATURES`)."""
        return [1.0, self.kitchen_wait_s, self.trip_m, self.approach_s, max(0.0, self.approach_s - self.kitchen_wait_s)]


def design_matrix(kitchen_wait_s: np.ndarray, trip_m: np.ndarray, approach_s: np.ndarray) -> np.ndarray:
    """The regression's rows (:data:`FEATURES`) of arrays of the three features."""
    return np.column_stack([np.ones_like(kitchen_wait_s), kitchen_wait_s, trip_m, approach_s,
                            np.maximum(0.0, approach_s - kitchen_wait_s)])


class CityModel:
    """The speed model the city runs on: ``speed_mps`` metres of road per real second, ``detour_factor`` road over
    great-circle distance, ``assign_delay_s`` before a courier sets off, the expected approach from the region's
    supply (``approach_m`` when unknown, at most ``approach_max_m``) over regions of H3 ``resolution``."""

    def __init__(self, speed_mps: float, detour_factor: float, assign_delay_s: float, approach_m: float,
                 approach_max_m: float, resolution: int) -> None:
        if speed_mps <= 0 or detour_factor < 1 or approach_max_m <= 0:
            raise ValueError(f"need speed_mps > 0, detour_factor >= 1, approach_max_m > 0 (got {speed_mps}, "
                             f"{detour_factor}, {approach_max_m})")
        self.speed_mps = speed_mps
        self.detour_factor = detour_factor
        self.assign_delay_s = assign_delay_s
        self.approach_m = approach_m
        self.approach_max_m = approach_max_m
        #: Average area of a region (an H3 cell at the surge resolution), m².
        self.region_area_m2 = h3.average_hexagon_area(resolution, unit="m^2")

    def trip_m(self, pickup: tuple[float, float], dropoff: tuple[float, float]) -> float:
        """Road metres from ``pickup`` to ``dropoff`` (degrees): great-circle × detour."""
        return h3.great_circle_distance(pickup, dropoff, unit="m") * self.detour_factor

    def expected_approach_m(self, supply: int | None) -> float:
        """Expected great-circle metres from the nearest of ``supply`` AVAILABLE couriers of a region to a point in
        it: 0.5·√(area/supply), at most ``approach_max_m`` (also for 0); ``approach_m`` when ``supply`` is None."""
        if supply is None:
            return self.approach_m
        if supply <= 0:
            return self.approach_max_m
        return min(self.approach_max_m, 0.5 * math.sqrt(self.region_area_m2 / supply))

    def approach_s(self, supply: int | None) -> float:
        """Expected seconds from wanting a courier to its arrival at the restaurant."""
        return self.assign_delay_s + self.expected_approach_m(supply) * self.detour_factor / self.speed_mps

    def features(self, kitchen_wait_s: float, pickup: tuple[float, float], dropoff: tuple[float, float],
                 supply: int | None) -> EtaFeatures:
        """An order's features (:class:`EtaFeatures`); a negative kitchen wait counts as 0."""
        return EtaFeatures(max(0.0, kitchen_wait_s), self.trip_m(pickup, dropoff), self.approach_s(supply))


def synthetic_history(city: CityModel, size: int, seed: int, *, max_kitchen_s: float, max_trip_m: float,
                      max_supply: int, pickup_wait_s: float, noise_s: float) -> tuple[np.ndarray, np.ndarray]:
    """``size`` synthetic deliveries drawn from ``city`` (module docstring): the design matrix (``size`` ×
    :data:`FEATURES`) and the delivery seconds. Deterministic for a ``seed``."""
    rng = np.random.default_rng(seed)
    kitchen_s = rng.uniform(0.0, max_kitchen_s, size)
    trip_m = rng.uniform(0.0, max_trip_m, size) * city.detour_factor
    supply = rng.integers(0, max_supply + 1, size)
    expected_m = np.array([city.expected_approach_m(int(n)) for n in range(max_supply + 1)])[supply]
    approach_s = city.assign_delay_s + expected_m * city.detour_factor / city.speed_mps
    # The nearest courier's distance is Rayleigh-distributed (mean σ·√(π/2)) around the expectation.
    actual_m = rng.rayleigh(expected_m / math.sqrt(math.pi / 2))
    courier_at_s = city.assign_delay_s + actual_m * city.detour_factor / city.speed_mps
    waits_s = rng.exponential(pickup_wait_s, size) if pickup_wait_s > 0 else np.zeros(size)
    noise = rng.normal(0.0, noise_s, size) if noise_s > 0 else np.zeros(size)
    delivery_s = np.maximum(kitchen_s, courier_at_s) + waits_s + trip_m / city.speed_mps + noise
    return design_matrix(kitchen_s, trip_m, approach_s), np.maximum(delivery_s, 0.0)


class EtaModel:
    """A fitted linear ETA: ``coefficients`` over :data:`FEATURES` and the promise's ``margin_s``."""

    def __init__(self, coefficients: Sequence[float], margin_s: float, rmse_s: float = 0.0, samples: int = 0,
                 quantile: float | None = None) -> None:
        if len(coefficients) != len(FEATURES):
            raise ValueError(f"need {len(FEATURES)} coefficients ({', '.join(FEATURES)}), got {len(coefficients)}")
        self.coefficients = np.asarray(coefficients, dtype=float)
        self.margin_s = float(margin_s)
        #: Root-mean-square residual of the fit, seconds.
        self.rmse_s = float(rmse_s)
        #: Rows fitted on.
        self.samples = samples
        #: The residuals' quantile the margin is (None: a fixed margin).
        self.quantile = quantile

    @classmethod
    def fit(cls, rows: np.ndarray, delivery_s: np.ndarray, quantile: float = 0.9,
            margin_s: float | None = None) -> EtaModel:
        """Least squares (``numpy.linalg.lstsq``) of ``delivery_s`` over ``rows`` (:data:`FEATURES`); the margin is
        ``margin_s``, or else the ``quantile`` of the residuals (at least 0)."""
        rows = np.asarray(rows, dtype=float)
        delivery_s = np.asarray(delivery_s, dtype=float)
        coefficients, *_ = np.linalg.lstsq(rows, delivery_s, rcond=None)
        residuals = delivery_s - rows @ coefficients
        rmse = float(np.sqrt(np.mean(residuals ** 2))) if len(residuals) else 0.0
        if margin_s is None:
            return cls(coefficients, max(0.0, float(np.quantile(residuals, quantile))), rmse, len(rows), quantile)
        return cls(coefficients, margin_s, rmse, len(rows), None)

    def predict_s(self, features: EtaFeatures) -> float:
        """Predicted seconds from placing to delivery (at least 0)."""
        return max(0.0, float(np.dot(self.coefficients, features.row())))

    def promise_s(self, features: EtaFeatures) -> float:
        """Seconds from placing to the promised delivery: the prediction plus the margin."""
        return self.predict_s(features) + self.margin_s

    def coefficient_map(self) -> dict[str, float]:
        """Feature name → coefficient (the intercept in s, ``trip_m`` in s/m, the others in s/s)."""
        return {name: float(value) for name, value in zip(FEATURES, self.coefficients, strict=True)}

    def describe(self) -> str:
        """The fitted model as one line (logged at start)."""
        terms = " ".join(f"{value:+.4g}·{name}" for name, value in self.coefficient_map().items()
                         if name != "intercept")
        margin = (f"the residuals' {self.quantile:.0%} quantile" if self.quantile is not None else "fixed")
        return (f"delivery_s = {self.coefficients[0]:.4g} {terms}; promise = prediction + {self.margin_s:.4g} s "
                f"({margin}); RMSE {self.rmse_s:.4g} s over {self.samples:,} synthetic deliveries")


def fit_from_settings(settings) -> tuple[EtaModel, CityModel]:
    """The city model of ``settings`` (:class:`~.settings.OrdersSettings`) and the ETA model fitted on its synthetic
    history."""
    city = CityModel(settings.courier_speed_mps, settings.detour_factor, settings.assign_delay_s,
                     settings.eta_approach_m, settings.eta_approach_max_m, settings.surge_resolution)
    rows, delivery_s = synthetic_history(
        city, settings.eta_history_size, settings.eta_seed, max_kitchen_s=settings.eta_history_max_kitchen_s,
        max_trip_m=settings.eta_history_max_trip_m, max_supply=settings.eta_history_max_supply,
        pickup_wait_s=settings.pickup_wait_s, noise_s=settings.eta_noise_s)
    return EtaModel.fit(rows, delivery_s, settings.promise_quantile, settings.promise_margin_s), city
