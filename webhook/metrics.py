"""Prometheus text metrics of the webhook: request counts and latency, certificate reloads.

A tiny in-process registry (no client library needed): counters keyed by label values
and rendered in the Prometheus text exposition format 0.0.4 by ``/metrics``. The
integration tests read ``fluxup_webhook_requests_total`` to prove that unmanaged objects
never reach the webhook. Owned by one aiohttp application (stored under an ``AppKey``),
never a module global.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

__all__ = ["WebhookMetrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + inner + "}" if inner else ""


@dataclass
class WebhookMetrics:
    """Counters for one webhook process."""

    requests: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    latency_buckets: Counter[tuple[str, float]] = field(default_factory=Counter)
    latency_sum: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    latency_count: Counter[str] = field(default_factory=Counter)
    cert_reloads: Counter[str] = field(default_factory=Counter)
    cert_not_after: float = 0.0

    def observe(self, path: str, kind: str, decision: str, seconds: float) -> None:
        """Count one answered request (``decision``: allow, hold, deny, bypass, ...)."""
        self.requests[(path, kind, decision)] += 1
        self.latency_sum[path] += seconds
        self.latency_count[path] += 1
        for bound in _LATENCY_BUCKETS:
            if seconds <= bound:
                self.latency_buckets[(path, bound)] += 1

    def count(self, path: str | None = None, kind: str | None = None) -> int:
        """Requests counted so far, optionally for one path and/or kind."""
        return sum(
            n
            for (p, k, _), n in self.requests.items()
            if (path is None or p == path) and (kind is None or k == kind)
        )

    def render(self) -> str:
        """The Prometheus text exposition of every metric."""
        out = [
            "# HELP fluxup_webhook_requests_total Admission reviews answered.",
            "# TYPE fluxup_webhook_requests_total counter",
        ]
        for (path, kind, decision), n in sorted(self.requests.items()):
            out.append(
                "fluxup_webhook_requests_total"
                f"{_labels(path=path, kind=kind, decision=decision)} {n}"
            )
        out += [
            "# HELP fluxup_webhook_request_duration_seconds Time to answer one review.",
            "# TYPE fluxup_webhook_request_duration_seconds histogram",
        ]
        for path in sorted(self.latency_count):
            for bound in _LATENCY_BUCKETS:
                n = self.latency_buckets[(path, bound)]
                out.append(
                    "fluxup_webhook_request_duration_seconds_bucket"
                    f"{_labels(path=path, le=repr(bound))} {n}"
                )
            total = self.latency_count[path]
            out.append(
                "fluxup_webhook_request_duration_seconds_bucket"
                f"{_labels(path=path, le='+Inf')} {total}"
            )
            out.append(
                "fluxup_webhook_request_duration_seconds_sum"
                f"{_labels(path=path)} {self.latency_sum[path]:.6f}"
            )
            out.append(f"fluxup_webhook_request_duration_seconds_count{_labels(path=path)} {total}")
        out += [
            "# HELP fluxup_webhook_certificate_reloads_total Serving certificate reloads.",
            "# TYPE fluxup_webhook_certificate_reloads_total counter",
        ]
        for result in ("success", "failure"):
            out.append(
                "fluxup_webhook_certificate_reloads_total"
                f"{_labels(result=result)} {self.cert_reloads[result]}"
            )
        out += [
            "# HELP fluxup_webhook_certificate_not_after_seconds Serving certificate expiry.",
            "# TYPE fluxup_webhook_certificate_not_after_seconds gauge",
            f"fluxup_webhook_certificate_not_after_seconds {self.cert_not_after:.0f}",
        ]
        return "\n".join(out) + "\n"
