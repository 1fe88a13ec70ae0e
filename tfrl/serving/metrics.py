"""Prometheus metrics of a server, as TF Serving exposes with `--monitoring_config_file`.

    tfrl_serving_requests_total{model_name, version, api, entrypoint, status}
    tfrl_serving_request_latency_seconds{model_name, version, api, entrypoint}   (histogram)
    tfrl_serving_loaded_versions{model_name}       versions AVAILABLE now
    tfrl_serving_load_failures_total{model_name}   failed version loads

`api` is predict, metadata or status; `entrypoint` REST or GRPC; `status` the
canonical code (OK, INVALID_ARGUMENT, NOT_FOUND, ...). Each server has its own
`CollectorRegistry`, so several servers in one process do not mix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from tfrl.errors import MissingDependencyError

__all__ = ["Metrics"]

# Latency buckets from 50 us to 10 s: fine below 5 ms, where a local model's answers
# fall, so that quantiles read from the histogram resolve tenths of a millisecond.
_BUCKETS = (
    0.00005,
    0.0001,
    0.00015,
    0.0002,
    0.0003,
    0.0004,
    0.0005,
    0.00075,
    0.001,
    0.0015,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    10.0,
)

UNKNOWN_MODEL = ""  # model_name label of requests for models not served (bounded labels)


class Metrics:
    """Request counters and latency histograms, plus gauges read from the registry.

    Args:
        loaded_versions: called at scrape time: {model name: AVAILABLE versions}.
        load_failures: called at scrape time: {model name: failed loads so far}.
    """

    def __init__(
        self,
        loaded_versions: Callable[[], Mapping[str, int]],
        load_failures: Callable[[], Mapping[str, int]],
    ) -> None:
        try:
            import prometheus_client
            from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
        except ImportError as e:
            raise MissingDependencyError(
                "Prometheus metrics need prometheus-client, a tfrl dependency that is missing "
                'here: pip install "prometheus-client==0.26.0" (or reinstall tfrl).'
            ) from e
        self._client = prometheus_client
        self.registry = prometheus_client.CollectorRegistry(auto_describe=True)
        self.requests = prometheus_client.Counter(
            "tfrl_serving_requests",
            "Requests answered, by model, version, API, entrypoint and status code.",
            ["model_name", "version", "api", "entrypoint", "status"],
            registry=self.registry,
        )
        self.latency = prometheus_client.Histogram(
            "tfrl_serving_request_latency_seconds",
            "Time from a request's arrival to its answer, in seconds.",
            ["model_name", "version", "api", "entrypoint"],
            buckets=_BUCKETS,
            registry=self.registry,
        )

        class _FromRegistry:
            def collect(self) -> Iterator:
                gauge = GaugeMetricFamily(
                    "tfrl_serving_loaded_versions",
                    "Versions of each model that are AVAILABLE.",
                    labels=["model_name"],
                )
                for name, count in sorted(loaded_versions().items()):
                    gauge.add_metric([name], count)
                yield gauge
                failures = CounterMetricFamily(
                    "tfrl_serving_load_failures",
                    "Version loads that failed (each retry counts).",
                    labels=["model_name"],
                )
                for name, count in sorted(load_failures().items()):
                    failures.add_metric([name], count)
                yield failures

        self.registry.register(_FromRegistry())

    def observe(
        self, model: str, version: str, api: str, entrypoint: str, status: str, seconds: float
    ) -> None:
        """Counts one answered request and its latency."""
        self.requests.labels(model, version, api, entrypoint, status).inc()
        self.latency.labels(model, version, api, entrypoint).observe(seconds)

    def exposition(self) -> tuple[bytes, str]:
        """(body, content type) of the Prometheus text format."""
        return self._client.generate_latest(self.registry), self._client.CONTENT_TYPE_LATEST
