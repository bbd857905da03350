"""The ``casemesh-phase`` request metadata: which calls of a run are seeding, not load.

The driver sends ``casemesh-phase: seed`` with every call its workload's
seeder makes (harness/driver.py), so a recorder in front of the services
(``casemesh record``) can tell them from the load: it always records this key,
whatever its ``--metadata`` allow-list, and ``recording to-profile`` and
``replay`` leave seed calls out unless ``--include-seed`` (issue 13: a
recording of a run otherwise weights ``shorten`` at 63 % of arrivals, against
about 1 % in the load itself). Servers ignore the key.
"""

from __future__ import annotations

#: The metadata key (lower case, as gRPC delivers keys).
PHASE_KEY = "casemesh-phase"
#: Its value on seeding calls.
SEED = "seed"
#: The metadata of a seeding call, as grpc takes it.
SEED_METADATA: tuple[tuple[str, str], ...] = ((PHASE_KEY, SEED),)
