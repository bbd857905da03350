"""Prometheus in the loop: a private Prometheus server for one run, and a client of any Prometheus's HTTP API.

``casemesh run --prometheus`` starts :class:`PrometheusServer`: the
``prometheus`` binary on a free 127.0.0.1 port, scraping every second what the
run started (each embedded service's ``metrics_address`` and the harness's own
``/metrics``), with exemplar storage on and its data under ``OUT/prometheus/``,
kept after the run so it can be reopened (:meth:`PrometheusServer.reopen_command`).
``--prometheus-url`` uses a server that already runs instead (loopback only).

:class:`RunMonitor` is what ``casemesh run`` drives: the harness's own
``/metrics`` (:mod:`casemesh.harness.metrics`), the server (or the URL), the
PromQL syntax check before the load, and the :class:`QueryWindow` of the
measured window after it, once every target has been scraped again.

:class:`PrometheusApi` is the small part of the HTTP API the harness needs:
readiness (``/-/ready``) and instant queries (``/api/v1/query``), over
``urllib`` with a timeout. Errors are :class:`PrometheusError` with
Prometheus's own ``errorType`` (``bad_data`` for a PromQL syntax error) when
it sent one.

Layout of ``OUT/prometheus/``::

    prometheus.yml    scrape configuration of the run
    reopen.yml        the same without scrape targets, for browsing the data afterwards
    data/             the TSDB (--storage.tsdb.path)
    prometheus.log    the server's output
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import math
import shlex
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, HarnessError

#: How to get the binary, for error messages.
INSTALL_HINT = ("install it (Debian/Ubuntu: `apt-get install -y prometheus`, 2.x; its system service need not run) "
                "or put the binary from https://prometheus.io/download/ on PATH")
#: Scrape and rule-evaluation interval of the run's server (s).
SCRAPE_INTERVAL_S = 1.0
#: Retention of the run's data: long, so reopening it months later does not delete it.
RETENTION = "10y"
READY_TIMEOUT_S = 30.0
STOP_GRACE_S = 10.0
QUERY_TIMEOUT_S = 10.0


class PrometheusError(Exception):
    """A Prometheus HTTP API call failed: unreachable, an HTTP error, or an error reply.

    ``error_type`` is Prometheus's ``errorType`` (``bad_data``, ``execution``,
    ``timeout``, ...) when the server sent one, else ``None``.
    """

    def __init__(self, message: str, error_type: str | None = None):
        super().__init__(message)
        self.error_type = error_type


def find_binary(name: str = "prometheus") -> str:
    """The path of the ``prometheus`` executable; ``ConfigError`` naming how to install it when it is not on PATH."""
    path = shutil.which(name)
    if path is None:
        raise ConfigError(f"the {name} binary is not on PATH: {INSTALL_HINT}; or pass --prometheus-url for a server that runs already",
                          field="--prometheus")
    return path


def loopback_url(url: str) -> str:
    """``url`` without a trailing ``/`` when it is ``http(s)://`` on a loopback host; ``ConfigError`` otherwise."""
    parsed = urllib.parse.urlsplit(url)
    host = parsed.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parsed.scheme not in ("http", "https") or not loopback or parsed.query or parsed.fragment:
        raise ConfigError(f"{url!r} is not an http:// URL on a loopback host (e.g. http://127.0.0.1:9090)", field="--prometheus-url")
    try:
        parsed.port  # noqa: B018 - validates the port
    except ValueError as error:
        raise ConfigError(f"{url!r}: {error}", field="--prometheus-url") from None
    return url.rstrip("/")


class PrometheusApi:
    """Client of one Prometheus server's HTTP API at ``url`` (``http://127.0.0.1:9090``, optionally with a path prefix)."""

    def __init__(self, url: str, timeout_s: float = QUERY_TIMEOUT_S):
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def ready(self) -> bool:
        """Whether ``/-/ready`` answers 200 (the server has loaded its data and serves queries)."""
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=min(self.timeout_s, 2.0)) as reply:
                return reply.status == 200
        except (OSError, urllib.error.HTTPError):
            return False

    def query(self, expression: str, at: float | None = None) -> tuple[str, Any]:
        """Evaluate PromQL ``expression`` at unix time ``at`` (s; now when ``None``).

        Returns ``(resultType, result)`` as the API gives them: ``"vector"`` and
        a list of ``{"metric": {...}, "value": [ts, "v"]}``, ``"scalar"`` and
        ``[ts, "v"]``, ``"matrix"``, ``"string"``. ``PrometheusError`` when
        unreachable, on an HTTP error or an error reply.
        """
        form = {"query": expression}
        if at is not None:
            form["time"] = f"{at:.3f}"
        request = urllib.request.Request(f"{self.url}/api/v1/query", data=urllib.parse.urlencode(form).encode(),
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as reply:
                body = reply.read()
        except urllib.error.HTTPError as error:
            body = error.read()
            reply_json = _json(body)
            if isinstance(reply_json, dict) and reply_json.get("status") == "error":
                raise PrometheusError(f"{reply_json.get('errorType')}: {reply_json.get('error')}", reply_json.get("errorType")) from None
            raise PrometheusError(f"HTTP {error.code} from {self.url}/api/v1/query: {body[:200].decode(errors='replace')}") from None
        except (OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            raise PrometheusError(f"cannot reach Prometheus at {self.url}: {reason}") from None
        reply_json = _json(body)
        if not isinstance(reply_json, dict) or reply_json.get("status") != "success":
            what = f"{reply_json.get('errorType')}: {reply_json.get('error')}" if isinstance(reply_json, dict) else "not a Prometheus API reply"
            raise PrometheusError(what, reply_json.get("errorType") if isinstance(reply_json, dict) else None)
        data = reply_json["data"]
        return data["resultType"], data["result"]

    def value(self, expression: str, at: float | None = None) -> float | None:
        """The single number ``expression`` evaluates to at ``at``, or ``None`` when it returns no series (or NaN).

        A scalar, or an instant vector of at most one series. ``PrometheusError``
        for several series (aggregate them, e.g. with ``sum(...)``), for a range
        vector or string, and for the errors of :meth:`query`.
        """
        result_type, result = self.query(expression, at)
        if result_type == "scalar":
            number = float(result[1])
        elif result_type == "vector":
            if not result:
                return None
            if len(result) > 1:
                shown = ", ".join(_series(r["metric"]) for r in result[:3])
                raise PrometheusError(f"the query returned {len(result)} series ({shown}{', ...' if len(result) > 3 else ''}), "
                                      "expected one number: aggregate them, e.g. sum(...)")
            number = float(result[0]["value"][1])
        else:
            raise PrometheusError(f"the query returned a {result_type}, expected one number (an instant vector of one series or a scalar)")
        return None if math.isnan(number) else number


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _series(labels: Mapping[str, str]) -> str:
    name = labels.get("__name__", "")
    rest = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return f"{name}{{{rest}}}"


@dataclass(frozen=True)
class QueryWindow:
    """The measured window of a run as Prometheus saw it: evaluate at ``end`` over ``end - start``.

    ``start``: unix time (s) the measured window began (after the warm-up);
    ``end``: the evaluation time, the first moment every scrape target had been
    scraped after the load ended. ``api`` is the server to ask.
    """

    api: PrometheusApi
    start: float
    end: float

    @property
    def seconds(self) -> float:
        """Length of the window in seconds."""
        return self.end - self.start

    @property
    def duration(self) -> str:
        """The window as a PromQL duration in whole milliseconds, rounded up (``6234ms``)."""
        return f"{max(math.ceil(self.seconds * 1000), 1)}ms"

    def value(self, expression: str) -> float | None:
        """:meth:`PrometheusApi.value` of ``expression`` (its ``$window`` already substituted) at ``end``."""
        return self.api.value(expression, at=self.end)


class PrometheusServer:
    """A ``prometheus`` process of one run, serving on 127.0.0.1 and scraping ``targets``.

    ``directory`` receives the configuration, the data and the log (module
    docstring). ``targets`` maps a job name (a service name, ``casemesh-harness``)
    to the ``host:port`` whose ``/metrics`` it scrapes. ``binary``: path of the
    executable (:func:`find_binary`). Call :meth:`start`, :meth:`wait_ready`,
    :meth:`wait_scraped` as needed, and always :meth:`stop`.
    """

    def __init__(self, directory: Path, targets: Mapping[str, str], binary: str, scrape_interval_s: float = SCRAPE_INTERVAL_S):
        from .mesh import LOOPBACK, free_port  # the mesh's services and stubs are not needed to load SLOs

        self.directory = directory.resolve()
        self.targets = dict(targets)
        self.binary = binary
        self.scrape_interval_s = scrape_interval_s
        self.address = f"{LOOPBACK}:{free_port()}"
        self.api = PrometheusApi(f"http://{self.address}")
        self._process: subprocess.Popen | None = None

    @property
    def config_file(self) -> Path:
        return self.directory / "prometheus.yml"

    @property
    def reopen_config_file(self) -> Path:
        return self.directory / "reopen.yml"

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def log_file(self) -> Path:
        return self.directory / "prometheus.log"

    def config(self) -> dict[str, Any]:
        """The scrape configuration: one job per target, every ``scrape_interval_s``."""
        interval = f"{round(self.scrape_interval_s * 1000)}ms"
        return {
            "global": {"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": interval},
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [address]}]}
                for job, address in self.targets.items()
            ],
        }

    def _flags(self, config: Path, listen: str) -> list[str]:
        return [f"--config.file={config}", f"--storage.tsdb.path={self.data_dir}", f"--storage.tsdb.retention.time={RETENTION}",
                f"--web.listen-address={listen}", "--enable-feature=exemplar-storage"]

    def start(self) -> None:
        """Write the configuration and start the process (returns at once; see :meth:`wait_ready`)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        header = "# Written by casemesh run --prometheus: scrapes what the run started.\n"
        self.config_file.write_text(header + yaml.safe_dump(self.config(), sort_keys=False))
        reopen = {"global": self.config()["global"]}
        self.reopen_config_file.write_text("# For browsing this run's data afterwards: no scrape targets (the run's processes are gone).\n"
                                           + yaml.safe_dump(reopen, sort_keys=False))
        with self.log_file.open("wb") as log:
            self._process = subprocess.Popen([self.binary, *self._flags(self.config_file, self.address)],
                                             stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Block until ``/-/ready`` answers; ``HarnessError`` with the log's tail if the process exits or the time runs out."""
        deadline = time.monotonic() + timeout_s
        while not self.api.ready():
            self._check_alive("while starting")
            if time.monotonic() > deadline:
                raise HarnessError(f"Prometheus did not become ready on {self.address} within {timeout_s:.0f} s:\n{self.log_tail()}")
            time.sleep(0.1)

    def wait_scraped(self, after: float, timeout_s: float | None = None) -> float:
        """Block until every target has been scraped successfully at or after unix time ``after``; returns the latest scrape time.

        Bounded by ``timeout_s`` (default five scrape intervals plus 5 s);
        ``HarnessError`` naming the targets that were not scraped (down, or
        not yet) when it runs out.
        """
        timeout_s = self.scrape_interval_s * 5 + 5 if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout_s
        while True:
            self._check_alive("while running")
            try:
                _, result = self.api.query("timestamp(up) and up == 1")
            except PrometheusError:
                result = []
            scraped = {r["metric"].get("job"): float(r["value"][1]) for r in result}
            missing = [job for job in self.targets if scraped.get(job, 0.0) < after]
            if not missing:
                return max(scraped[job] for job in self.targets)
            if time.monotonic() > deadline:
                shown = ", ".join(f"{job} ({self.targets[job]})" for job in missing)
                raise HarnessError(f"Prometheus did not scrape {shown} within {timeout_s:.0f} s; see its targets page http://{self.address}/targets")
            time.sleep(min(0.2, self.scrape_interval_s / 4))

    def _check_alive(self, when: str) -> None:
        if self._process is not None and self._process.poll() is not None:
            raise HarnessError(f"Prometheus exited with code {self._process.returncode} {when}:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of the server's log."""
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """SIGTERM the process and wait up to ``STOP_GRACE_S`` for it to flush and exit, then SIGKILL (idempotent)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def reopen_command(self, listen: str = "127.0.0.1:9090") -> str:
        """A shell command that serves this run's data again (no scraping) on ``listen``."""
        return shlex.join([Path(self.binary).name, *self._flags(self.reopen_config_file, listen)])


def _iso(unix_s: float) -> str:
    return datetime.fromtimestamp(unix_s, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class RunMonitor:
    """What ``casemesh run`` runs beside the load for metrics: the harness's ``/metrics`` and, if asked, a Prometheus.

    ``slos`` feed the harness's SLO gauges. ``binary`` (from :func:`find_binary`)
    starts a private :class:`PrometheusServer` in ``out_dir/prometheus``;
    ``url`` (from :func:`loopback_url`) uses a running server instead; with
    neither, Prometheus SLOs are not evaluated. ``metrics_port`` is the
    harness's ``/metrics`` port on 127.0.0.1 (0: a free one). ``say`` prints a
    progress line. Use :meth:`start` once the services run, :meth:`attach` the
    driver, :meth:`window` after the load and always :meth:`stop`.
    """

    def __init__(self, slos: Sequence[Any], out_dir: Path, *, binary: str | None = None, url: str | None = None,
                 metrics_port: int = 0, say: Callable[[str], Any] = print):
        from .metrics import HarnessMetrics

        self.metrics = HarnessMetrics(slos)
        self.out_dir = out_dir
        self.binary = binary
        self.metrics_port = metrics_port
        self.say = say
        self.server: PrometheusServer | None = None
        self.api: PrometheusApi | None = PrometheusApi(url) if url else None

    @property
    def pending_note(self) -> str:
        """Note of a Prometheus SLO before its evaluation: it will be evaluated after the run, or not at all."""
        from .slo import NOT_EVALUATED_NOTE

        return "evaluated after the run" if self.api is not None or self.binary else NOT_EVALUATED_NOTE

    async def start(self, scrape: Mapping[str, str], check: Callable[[PrometheusApi], None] | None = None) -> None:
        """Serve the harness's ``/metrics``; start or reach Prometheus; then ``check(api)`` (e.g. :func:`~casemesh.harness.slo.check_queries`).

        ``scrape`` maps each started service to its ``metrics_address``; the
        private server scrapes those and the harness, and this returns once it
        is ready and has scraped each of them. ``HarnessError`` when a step
        fails (the port is taken, Prometheus does not start, the ``url`` is
        not ready or unreachable).
        """
        try:
            address = self.metrics.start(self.metrics_port)
        except OSError as error:
            raise HarnessError(f"cannot serve the harness metrics on 127.0.0.1:{self.metrics_port}: {error.strerror}") from None
        self.say(f"harness metrics on {self.metrics.url}")
        if self.binary:
            self.server = PrometheusServer(self.out_dir / "prometheus", {"casemesh-harness": address, **scrape}, self.binary)
            self.say(f"starting Prometheus on http://{self.server.address} (scraping {', '.join(self.server.targets)} every "
                     f"{self.server.scrape_interval_s:g} s; data in {self.server.data_dir})")
            self.server.start()
            await asyncio.to_thread(self.server.wait_ready)
            await asyncio.to_thread(self.server.wait_scraped, time.time())
            self.api = self.server.api
        elif self.api is not None:
            if not await asyncio.to_thread(self.api.ready):
                raise HarnessError(f"Prometheus at {self.api.url} is not ready ({self.api.url}/-/ready does not answer 200)")
            self.say(f"Prometheus SLOs are evaluated by {self.api.url}; it must scrape the services (and may scrape {self.metrics.url})")
        if self.api is not None and check is not None:
            try:
                await asyncio.to_thread(check, self.api)
            except PrometheusError as error:
                raise HarnessError(f"Prometheus at {self.api.url}: {error}") from None

    def attach(self, driver: Any) -> None:
        """Report ``driver``'s stats and arrivals on ``/metrics`` (call before ``driver.run``)."""
        from .metrics import watch_arrivals

        self.metrics.collector.attach(driver.stats, watch_arrivals(driver))

    async def window(self, progress: Any, warmup_s: float) -> QueryWindow | None:
        """The measured window for Prometheus SLOs, once every target has been scraped after the load (``None`` without Prometheus).

        Call right after ``driver.run`` returns and before the services stop.
        The window starts ``warmup_s`` after ``progress.started_at`` (the
        driver's ``perf_counter`` start) and ends at the first moment every
        target had been scraped since the load ended. If that does not happen
        in time, it ends now and a warning is printed.
        """
        if self.api is None:
            return None
        load_end = time.time()
        start = load_end - (time.perf_counter() - progress.started_at) + warmup_s
        try:
            if self.server is not None:
                end = await asyncio.to_thread(self.server.wait_scraped, load_end)
            else:
                end = await asyncio.to_thread(_wait_all_scraped, self.api, load_end)
        except (HarnessError, PrometheusError) as error:
            self.say(f"warning: {error}; evaluating Prometheus SLOs at {_iso(time.time())}")
            end = time.time()
        return QueryWindow(self.api, start=start, end=end)

    def describe(self, window: QueryWindow | None) -> dict[str, Any] | None:
        """The ``prometheus`` object of ``result.json`` (docs/results.md), ``None`` without Prometheus."""
        if self.api is None:
            return None
        described: dict[str, Any] = {"mode": "embedded" if self.server else "external", "url": self.api.url, "window": None}
        if window is not None:
            described["window"] = {"start": _iso(window.start), "end": _iso(window.end), "start_unix": round(window.start, 3),
                                   "end_unix": round(window.end, 3), "seconds": round(window.seconds, 3), "duration": window.duration}
        if self.server is not None:
            described.update(directory=str(self.server.directory), config=str(self.server.config_file),
                             data_dir=str(self.server.data_dir), reopen=self.server.reopen_command())
        return described

    def summary_lines(self) -> list[str]:
        """Where the run's Prometheus data is and how to reopen it (nothing without a private server)."""
        if self.server is None:
            return []
        return [f"Prometheus data: {self.server.data_dir}", f"reopen it: {self.server.reopen_command()}"]

    def stop(self) -> None:
        """Stop Prometheus (if started) and the ``/metrics`` server (idempotent)."""
        if self.server is not None:
            self.server.stop()
        self.metrics.stop()


def _wait_all_scraped(api: PrometheusApi, after: float, timeout_s: float = 60.0) -> float:
    """For a server we did not configure: wait until every target it scrapes (``up``) has a sample at or after ``after``."""
    deadline = time.monotonic() + timeout_s
    while True:
        _, result = api.query("timestamp(up)")
        stamps = [float(r["value"][1]) for r in result]
        if stamps and min(stamps) >= after:
            return max(stamps)
        if time.monotonic() > deadline:
            raise HarnessError(f"{api.url} did not scrape all its targets within {timeout_s:.0f} s after the load")
        time.sleep(0.5)
