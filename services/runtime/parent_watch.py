"""A served process that outlives the process that started it stops by itself.

The embedded mesh (harness/mesh.py) and ``casemesh serve``'s supervisor
(harness/supervisor.py) start each service as a child and stop it on exit.
When they cannot (SIGKILLed, an OOM kill, a test's timeout killing the
harness), the children would otherwise serve on, orphaned, holding ports and
CPU. They set ``CASEMESH_PARENT_PID`` to their own pid; :func:`watch_parent`
polls ``os.getppid()`` once a second and, when the parent is gone (the child
was re-parented), sets the server's stop event, so the service shuts down as
on SIGTERM: drained, flushed, spans exported.
"""

from __future__ import annotations

import asyncio
import logging
import os

log = logging.getLogger("casemesh.runtime")

#: The environment variable naming the parent process whose exit stops this one.
PARENT_ENV = "CASEMESH_PARENT_PID"
#: How often the parent is checked (s).
POLL_S = 1.0


def parent_environment() -> dict[str, str]:
    """The environment entry a parent gives a child that must not outlive it."""
    return {PARENT_ENV: str(os.getpid())}


def watch_parent(stop: asyncio.Event, environ: dict[str, str] | None = None) -> asyncio.Task | None:
    """A task that sets ``stop`` once the process named by ``CASEMESH_PARENT_PID`` is no longer this one's parent.

    ``None`` when the variable is unset (a process started by hand) or is
    not a pid. Must be called inside the running event loop; cancel the task
    on shutdown.
    """
    value = (environ if environ is not None else os.environ).get(PARENT_ENV, "")
    if not value.isdigit():
        return None
    parent = int(value)

    async def watch() -> None:
        while os.getppid() == parent:
            await asyncio.sleep(POLL_S)
        log.warning("parent process %d is gone: stopping, as on SIGTERM", parent)
        stop.set()

    if os.getppid() != parent:  # already orphaned before serving began
        log.warning("parent process %d is gone: stopping, as on SIGTERM", parent)
        stop.set()
        return None
    return asyncio.get_running_loop().create_task(watch())
