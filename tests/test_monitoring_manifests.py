"""The Grafana dashboard and the PrometheusRule use only metrics FluxUp exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import promql_parser
import pytest
import yaml

from fluxup.adapters.metrics import FleetGauges, HeldGauge, OperatorMetrics
from webhook.metrics import WebhookMetrics

MONITORING = Path(__file__).resolve().parents[1] / "manifests" / "monitoring"
NAME = re.compile(r"\bfluxup_[a-z_]+\b")


def exposed() -> set[str]:
    metrics = OperatorMetrics()
    metrics.observe_operation("upgrade", "failed", 1.0)
    metrics.observe_scan("success", 1.0)
    metrics.observe_notification("json", True)
    metrics.started.labels("ui").inc()
    metrics.set_fleet(FleetGauges(1, {("a", "b", "chart", "minor"): 1},
                                  [HeldGauge("HelmRelease", "a", "b", "b", 1.0)],
                                  {("a", "b"): (1, 1.0, 1.0)}))
    hook = WebhookMetrics()
    hook.observe("/mutate", "HelmRelease", "hold", 0.01)
    text = metrics.render().decode() + hook.render()
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines()
            if line and not line.startswith("#")}


def used_in(text: str) -> set[str]:
    return set(NAME.findall(text))


def test_dashboard_queries_exposed_metrics() -> None:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    names = set().union(*(used_in(e) for e in exprs))
    assert names
    assert names <= exposed(), names - exposed()
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


def test_alerts_use_exposed_metrics() -> None:
    rule = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    rules = rule["spec"]["groups"][0]["rules"]
    names = set().union(*(used_in(r["expr"]) for r in rules))
    assert names <= exposed(), names - exposed()
    alerts = {r["alert"] for r in rules}
    assert {"FluxUpReleaseHeldTooLong", "FluxUpUpgradeFailed", "FluxUpWebhookErrors",
            "FluxUpWebhookCertificateExpiresSoon", "FluxUpWebhookCertificateExpired"} <= alerts


def test_the_service_monitor_scrapes_the_operator_and_the_webhook() -> None:
    """Both processes serve /metrics; the webhook's alerts need its series collected."""
    monitor = yaml.safe_load((MONITORING / "servicemonitor.yaml").read_text())
    manifests = MONITORING.parent
    services = [doc for path in sorted(manifests.glob("*/**/service*.yaml"))
                if "chart" not in path.parts
                for doc in yaml.safe_load_all(path.read_text())
                if doc and doc.get("kind") == "Service"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    ports = {p["name"]: s["metadata"]["name"] for s in services
             if selector.items() <= s["metadata"].get("labels", {}).items()
             for p in s["spec"]["ports"]}
    endpoints = {e["port"]: e for e in monitor["spec"]["endpoints"]}
    assert "metrics" in ports, ports  # the operator's metrics Service
    assert ports.get("https") == "fluxup-webhook", ports
    webhook = endpoints["https"]
    assert webhook["scheme"] == "https"
    assert webhook["tlsConfig"]["serverName"] == "fluxup-webhook.fluxup-system.svc"
    assert webhook["tlsConfig"]["ca"]["secret"] == {"name": "fluxup-webhook-tls",
                                                    "key": "ca.crt"}
    assert "metrics" in endpoints


def _queries() -> list[tuple[str, str]]:
    rule = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    return [(r["alert"], r["expr"]) for r in rule["spec"]["groups"][0]["rules"]] + [
        (p["title"], t["expr"]) for p in dashboard["panels"] for t in p["targets"]]


@pytest.mark.parametrize(("where", "expr"), _queries(), ids=lambda v: str(v)[:40])
def test_every_query_is_valid_promql(where: str, expr: str) -> None:
    """A typo in an alert's PromQL would silently never fire: each query must parse."""
    promql_parser.parse(expr.replace("$__rate_interval", "5m"))
