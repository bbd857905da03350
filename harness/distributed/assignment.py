"""What a coordinator hands a worker, and how the worker turns it back into a run: profile text, plan digest, seeded state.

**The profile travels as text.** :func:`worker_profile_text` writes the
profile the coordinator actually runs: the original YAML document with the
*effective* arrival process (``--rate-scale`` or the ``rate_scale: auto``
choice already applied), warm-up and duration, and without ``slos``,
``faults``, ``rate_scale`` and ``rate_scales`` (the coordinator judges the
SLOs and runs the faults; the rate is decided). A rate curve's or a trace's
CSV travels beside it (:func:`profile_files`). :func:`load_worker_profile`
writes both into a temporary folder and loads them with the ordinary
:func:`~casemesh.harness.profile.load_profile`, so a worker checks the profile
exactly as ``casemesh run`` does.

**Both sides check they draw the same schedule.** :func:`plan_digest` is the
SHA-256 of the run's first :data:`DIGEST_ARRIVALS` (intended offset, journey)
pairs of the *whole* schedule (:func:`~casemesh.harness.workers.plan_arrivals`
of the plan :meth:`Driver.plan <casemesh.harness.driver.Driver.plan>` draws). The
coordinator sends its own; a worker whose profile, seed or casemesh version
draws anything else refuses to start (:class:`~casemesh.harness.errors.HarnessError`).

**The seeded state is pickled** (as ``--workers`` pickles it into spawned
processes); :func:`load_state` unpickles with an allow-list: builtins
containers and the classes of ``casemesh.harness.workloads``. Anything else
in the bytes (a class that could run code when built) is refused.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import tempfile
from pathlib import Path
from typing import Any

import yaml

from ..driver import plan_rngs
from ..errors import ConfigError, HarnessError
from ..workers import plan_arrivals

#: How many arrivals of the whole schedule :func:`plan_digest` covers.
DIGEST_ARRIVALS = 10_000
#: Profile keys the coordinator keeps to itself.
COORDINATOR_ONLY = ("slos", "faults", "rate_scale", "rate_scales")
#: Builtins the seeded state may contain.
_SAFE_BUILTINS = frozenset({"dict", "list", "tuple", "set", "frozenset", "str", "bytes", "int", "float", "bool", "complex", "NoneType"})
#: Modules whose classes the seeded state may contain.
_SAFE_MODULE_PREFIX = "casemesh.harness.workloads."


def worker_profile_text(profile: Any) -> str:
    """The YAML text of the profile as run (``profile`` a loaded :class:`~casemesh.harness.profile.Profile`)."""
    try:
        data = yaml.safe_load(Path(profile.path).read_text(encoding="utf-8"))
    except OSError as error:
        raise HarnessError(f"cannot read the profile {profile.path} to hand it to the workers: {error.strerror or error}") from None
    for key in COORDINATOR_ONLY:
        data.pop(key, None)
    data["arrival"] = profile.arrival.model_dump(mode="json", exclude_defaults=False)
    if getattr(profile.arrival, "file", None):
        data["arrival"]["file"] = _sent_name(profile.arrival.file)
    data["warmup_s"] = profile.warmup_s
    data["duration_s"] = profile.duration_s
    return yaml.safe_dump(data, sort_keys=False)


def _sent_name(name: str) -> str:
    """The name a file of the profile travels under: its base name (the profile sent names it so)."""
    return Path(name).name


def profile_files(profile: Any) -> dict[str, str]:
    """``{name: text}`` of the file the profile's arrival process reads (a CSV, under its base name), else ``{}``."""
    name = getattr(profile.arrival, "file", None)
    if not name:
        return {}
    path = Path(profile.path).parent / name
    try:
        return {_sent_name(name): path.read_text(encoding="utf-8")}
    except OSError as error:
        raise HarnessError(f"cannot read {path} to hand it to the workers: {error.strerror or error}") from None


def load_worker_profile(text: str, files: dict[str, str]) -> Any:
    """Load a profile sent by the coordinator; ``HarnessError`` with the loader's message when it does not validate here."""
    from ..profile import load_profile

    with tempfile.TemporaryDirectory(prefix="casemesh-worker-") as folder:
        root = Path(folder).resolve()
        for name, content in files.items():
            target = (root / name).resolve()
            if root not in target.parents:  # a name like ../../etc/x must not write outside the folder
                raise HarnessError(f"the coordinator sent a profile file outside the profile's folder: {name!r}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
        path = root / "profile.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            return load_profile(path)  # CSVs are read now: the folder may go afterwards
        except ConfigError as error:
            raise HarnessError(f"the profile the coordinator sent does not load here (another casemesh version?): {error}") from None


def plan_digest(profile: Any, seed: int, arrivals: int = DIGEST_ARRIVALS) -> str:
    """SHA-256 (hex) of the first ``arrivals`` (offset, journey) pairs of ``profile``'s whole schedule under ``seed``."""
    arrival_rng, choice_rng = plan_rngs(seed)  # what Driver.plan draws from, without channels
    digest = hashlib.sha256()
    pairs = plan_arrivals((profile.arrival.schedule(arrival_rng, profile.warmup_s + profile.duration_s), choice_rng.choices), profile)
    for _, (offset, journey) in zip(range(arrivals), pairs):
        digest.update(f"{offset!r} {journey}\n".encode())
    return digest.hexdigest()


def dump_state(state: Any) -> bytes:
    """The seeded state as bytes; ``HarnessError`` when it cannot be pickled."""
    try:
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as error:  # noqa: BLE001 - any pickling failure means the same thing here
        raise HarnessError(f"the seeded state cannot be sent to workers ({type(error).__name__}: {error})") from None


class _StateUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module == "builtins" and name in _SAFE_BUILTINS) or module.startswith(_SAFE_MODULE_PREFIX):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a seeded state")


def load_state(data: bytes) -> Any:
    """The seeded state from :func:`dump_state`'s bytes; ``HarnessError`` for bytes holding anything but allowed classes."""
    try:
        return _StateUnpickler(io.BytesIO(data)).load()
    except Exception as error:  # noqa: BLE001 - damaged or refused: the worker cannot run either way
        raise HarnessError(f"the seeded state from the coordinator cannot be read: {error}") from None
