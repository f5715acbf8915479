"""A small closed-loop HTTP load generator for the serving benchmarks.

Each client is a process of its own holding one keep-alive connection: it
sends a request, waits for the whole response, and sends the next, so the
offered load is what the server can take (closed loop). Latency is measured
per request with ``time.perf_counter``, from just before the request is
written to just after the last byte of the body is read. Processes rather
than threads keep the GIL out of the measured latency.

Clients run a warm-up first (not recorded), then record every request that
starts inside the measured window. ``CLOCK_MONOTONIC``, behind
``time.monotonic`` on Linux, is shared by all processes, so the parent
hands every client the same absolute window.

This module imports nothing from Django, so its client processes start
quickly and stay small.
"""

import http.client
import math
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from urllib.parse import urlsplit

# Time given to the client processes to start before the warm-up begins.
START_SLACK_SECONDS = 1.0
# A request taking longer than this counts as an error, not a latency.
REQUEST_TIMEOUT_SECONDS = 30


@dataclass
class LoadResult:
    """What a load run measured; latencies in seconds, sorted."""

    clients: int
    duration: float
    latencies: list = field(default_factory=list)
    errors: int = 0
    error_samples: list = field(default_factory=list)
    reconnects: int = 0
    client_cpu_seconds: float = 0.0

    @property
    def requests(self):
        return len(self.latencies)

    @property
    def rate(self):
        """Successful requests per second over the measured window."""
        return self.requests / self.duration

    def percentile(self, share):
        """Nearest-rank percentile, ``share`` from 0 to 1."""
        if not self.latencies:
            return math.nan
        rank = max(1, math.ceil(share * len(self.latencies)))
        return self.latencies[rank - 1]


def run(url, bodies, headers=None, clients=8, duration=20.0, warmup=3.0):
    """POST ``bodies`` to ``url`` from ``clients`` processes; a ``LoadResult``.

    Client ``i`` cycles through ``bodies`` starting at ``i``, so clients do
    not send the same request at the same moment.
    """
    start = time.monotonic() + START_SLACK_SECONDS + warmup
    window = (start, start + duration)
    headers = {"Content-Type": "application/json", **(headers or {})}
    with ProcessPoolExecutor(clients, mp_context=get_context("spawn")) as pool:
        futures = [
            pool.submit(_client, url, bodies, headers, index, window)
            for index in range(clients)
        ]
        outcomes = [future.result() for future in futures]

    result = LoadResult(clients=clients, duration=duration)
    for outcome in outcomes:
        result.latencies.extend(outcome["latencies"])
        result.errors += outcome["errors"]
        result.error_samples.extend(outcome["error_samples"])
        result.reconnects += outcome["reconnects"]
        result.client_cpu_seconds += outcome["cpu_seconds"]
    result.latencies.sort()
    result.error_samples = result.error_samples[:5]
    return result


def post(url, body, headers=None):
    """One POST on a fresh connection; ``(status, body bytes, seconds)``."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(
        parts.hostname, parts.port, timeout=REQUEST_TIMEOUT_SECONDS
    )
    headers = {"Content-Type": "application/json", **(headers or {})}
    try:
        started = time.perf_counter()
        connection.request("POST", parts.path, body=body, headers=headers)
        response = connection.getresponse()
        content = response.read()
        return response.status, content, time.perf_counter() - started
    finally:
        connection.close()


def _client(url, bodies, headers, index, window):
    """Run one closed-loop client until the window ends; return its figures."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(
        parts.hostname, parts.port, timeout=REQUEST_TIMEOUT_SECONDS
    )
    start, end = window
    latencies, error_samples = [], []
    errors = reconnects = 0
    cpu_started = time.process_time()
    position = index

    while True:
        began_at = time.monotonic()
        if began_at >= end:
            break
        body = bodies[position % len(bodies)]
        position += 1

        started = time.perf_counter()
        try:
            connection.request("POST", parts.path, body=body, headers=headers)
            response = connection.getresponse()
            content = response.read()
        except (OSError, http.client.HTTPException) as exc:
            # A dropped keep-alive connection: the next request reconnects.
            connection.close()
            reconnects += 1
            if began_at >= start:
                errors += 1
                error_samples.append(repr(exc))
            continue
        elapsed = time.perf_counter() - started

        if response.will_close:
            connection.close()
            reconnects += 1
        if began_at < start:
            continue
        if response.status == 200:
            latencies.append(elapsed)
        else:
            errors += 1
            error_samples.append(f"{response.status}: {content[:200]!r}")

    connection.close()
    return {
        "latencies": latencies,
        "errors": errors,
        "error_samples": error_samples[:5],
        "reconnects": reconnects,
        "cpu_seconds": time.process_time() - cpu_started,
    }
