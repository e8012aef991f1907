"""The capture proxy's Prometheus metrics, in a registry of its own.

Every request is accounted for exactly once among the record counters::

    requests = sampled_out + skipped + dropped + written + (still queued)

``modelrollout_capture_requests_total{code}``
    Requests answered, by the status code returned to the client.
``modelrollout_capture_proxy_errors_total{type}``
    Requests the model did not answer (``connection``, ``timeout``,
    ``invalid_response``, ``request_too_large``); the proxy answered 502, 504 or 413.
``modelrollout_capture_records_written_total``
    Records written to a file.
``modelrollout_capture_records_dropped_total{reason}``
    Records lost: ``queue_full`` (the writer was behind), ``too_large`` (larger than the
    whole queue), ``write_error`` (the write failed), ``shutdown`` (still queued when the
    shutdown timeout ran out).
``modelrollout_capture_records_skipped_total{reason}``
    Requests not recorded because a replay could not send them again (``method``,
    ``binary_body``) or because the proxy refused them (``body_too_large``, and
    ``malformed_request`` for a request it could not read, answered 400).
``modelrollout_capture_full_path_connections_total{reason}``
    Client connections the lean path handed to the full HTTP server, by why
    (``transfer-encoding``, ``upgrade``, ``expect``, ``target``).
``modelrollout_capture_records_sampled_out_total``
    Requests left out by ``--sample``.
``modelrollout_capture_bytes_written_total``
    Bytes written to disk (compressed, with gzip).
``modelrollout_capture_files_rotated_total{reason}``
    Files closed, by reason (``size``, ``age``, ``shutdown``, ``error``).
``modelrollout_capture_files_deleted_total``
    Old files deleted to keep within ``--max-total-bytes``.
``modelrollout_capture_write_errors_total``
    Failed writes (each drops the records it carried).
``modelrollout_capture_queue_records`` / ``modelrollout_capture_queue_bytes``
    Records and bytes waiting for the writer.
``modelrollout_capture_disk_bytes``
    Bytes in this proxy's capture files, closed and open.
``modelrollout_capture_added_latency_seconds``
    Time the proxy adds to a request: its whole handling minus the model's answer.
``modelrollout_capture_upstream_latency_seconds``
    Time the model took, as seen from the proxy.
``modelrollout_capture_info{version,track}``
    1, with this proxy's model version and track.

The registry is per proxy (tests run several in one process) and has no process or
platform collectors.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from modelrollout.core.capture import backlog, http1, record, rotation

# No `*_created` series: they double the output and nobody here reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

LATENCY_BUCKETS = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
)
UPSTREAM_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PROXY_ERRORS = ("connection", "timeout", "invalid_response", "request_too_large")
DROP_REASONS = (
    backlog.DROP_QUEUE_FULL,
    backlog.DROP_TOO_LARGE,
    backlog.DROP_WRITE_ERROR,
    backlog.DROP_SHUTDOWN,
)
SKIP_REASONS = (
    record.SKIP_METHOD,
    record.SKIP_BINARY_BODY,
    record.SKIP_BODY_TOO_LARGE,
    record.SKIP_MALFORMED,
)
FULL_PATH_REASONS = (
    http1.FALLBACK_TRANSFER_ENCODING,
    http1.FALLBACK_UPGRADE,
    http1.FALLBACK_EXPECT,
    http1.FALLBACK_TARGET,
)
ROTATE_REASONS = (
    rotation.ROTATE_SIZE,
    rotation.ROTATE_AGE,
    rotation.ROTATE_SHUTDOWN,
    rotation.ROTATE_ERROR,
)


class CaptureMetrics:
    """The metrics of one proxy; label children are cached for the request path."""

    def __init__(self, version: str | None = None, track: str | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "modelrollout_capture_requests",
            "Requests answered, by status code.",
            ["code"],
            registry=r,
        )
        self.proxy_errors = Counter(
            "modelrollout_capture_proxy_errors",
            "Requests the model did not answer, by type.",
            ["type"],
            registry=r,
        )
        self.written = Counter(
            "modelrollout_capture_records_written", "Records written to a file.", registry=r
        )
        self.dropped = Counter(
            "modelrollout_capture_records_dropped",
            "Records lost, by reason.",
            ["reason"],
            registry=r,
        )
        self.skipped = Counter(
            "modelrollout_capture_records_skipped",
            "Requests a replay could not send again, not recorded, by reason.",
            ["reason"],
            registry=r,
        )
        self.sampled_out = Counter(
            "modelrollout_capture_records_sampled_out",
            "Requests left out by the sampling fraction.",
            registry=r,
        )
        self.bytes_written = Counter(
            "modelrollout_capture_bytes_written", "Bytes written to disk.", registry=r
        )
        self.rotated = Counter(
            "modelrollout_capture_files_rotated", "Files closed, by reason.", ["reason"], registry=r
        )
        self.deleted = Counter(
            "modelrollout_capture_files_deleted",
            "Old files deleted to keep within the total size.",
            registry=r,
        )
        self.write_errors = Counter(
            "modelrollout_capture_write_errors", "Failed writes.", registry=r
        )
        self.queue_records = Gauge(
            "modelrollout_capture_queue_records", "Records waiting for the writer.", registry=r
        )
        self.queue_bytes = Gauge(
            "modelrollout_capture_queue_bytes", "Bytes waiting for the writer.", registry=r
        )
        self.disk_bytes = Gauge(
            "modelrollout_capture_disk_bytes", "Bytes in the capture files.", registry=r
        )
        self.added_latency = Histogram(
            "modelrollout_capture_added_latency_seconds",
            "Time the proxy adds to a request.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_latency = Histogram(
            "modelrollout_capture_upstream_latency_seconds",
            "Time the model took, seen from the proxy.",
            buckets=UPSTREAM_BUCKETS,
            registry=r,
        )
        self.full_path = Counter(
            "modelrollout_capture_full_path_connections",
            "Client connections the lean path handed to the full HTTP server, by reason.",
            ["reason"],
            registry=r,
        )
        info = Gauge(
            "modelrollout_capture_info",
            "This proxy's model version and track.",
            ["version", "track"],
            registry=r,
        )
        info.labels(version or "", track or "").set(1)
        for kind in PROXY_ERRORS:
            self.proxy_errors.labels(kind)
        for reason in DROP_REASONS:
            self.dropped.labels(reason)
        for reason in SKIP_REASONS:
            self.skipped.labels(reason)
        for reason in ROTATE_REASONS:
            self.rotated.labels(reason)
        for reason in FULL_PATH_REASONS:
            self.full_path.labels(reason)
        self._codes: dict[int, Counter] = {}

    def answered(self, status: int) -> None:
        child = self._codes.get(status)
        if child is None:
            child = self._codes[status] = self.requests.labels(str(status))
        child.inc()

    def watch_queue(self, records: Callable[[], float], queued_bytes: Callable[[], float]) -> None:
        self.queue_records.set_function(records)
        self.queue_bytes.set_function(queued_bytes)

    def value(self, name: str, **labels: str) -> float:
        """A sample's current value (0 when absent), e.g. ``value("..._total", reason=...)``."""
        found = self.registry.get_sample_value(name, labels)
        return 0.0 if found is None else found

    def total(self, name: str) -> float:
        """The sum of a sample over all its labels, e.g. every drop reason."""
        return sum(
            sample.value
            for metric in self.registry.collect()
            for sample in metric.samples
            if sample.name == name
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
