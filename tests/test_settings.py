"""Operator settings from the environment: defaults, overrides, invalid values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fluxup.errors import ConfigError
from fluxup.settings import Settings


def test_defaults() -> None:
    assert Settings.from_env({}) == Settings(
        namespace="fluxup-system",
        operator_username="system:serviceaccount:fluxup-system:fluxup-operator",
        field_manager="fluxup-operator",
        work_dir=Path("/var/lib/fluxup"),
        kubeconfig=None,
        active_poll_seconds=1.0,
        idle_resync_seconds=60.0,
        allow_cross_namespace_refs=False,
        git_author_name="FluxUp",
        git_author_email="fluxup@localhost",
    )


def test_unrelated_variables_are_ignored() -> None:
    assert Settings.from_env({"HOME": "/root", "NAMESPACE": "x"}) == Settings()


@pytest.mark.parametrize(
    ("env", "field", "value"),
    [
        ({"FLUXUP_NAMESPACE": "ops"}, "namespace", "ops"),
        (
            {"FLUXUP_OPERATOR_USERNAME": "system:serviceaccount:ops:fluxup"},
            "operator_username",
            "system:serviceaccount:ops:fluxup",
        ),
        ({"FLUXUP_FIELD_MANAGER": "fluxup-test"}, "field_manager", "fluxup-test"),
        ({"FLUXUP_WORK_DIR": "/tmp/fluxup"}, "work_dir", Path("/tmp/fluxup")),
        (
            {"FLUXUP_KUBECONFIG": "/etc/fluxup/kubeconfig"},
            "kubeconfig",
            Path("/etc/fluxup/kubeconfig"),
        ),
        ({"KUBECONFIG": "/root/.kube/config"}, "kubeconfig", Path("/root/.kube/config")),
        ({"FLUXUP_KUBECONFIG": "/a", "KUBECONFIG": "/b"}, "kubeconfig", Path("/a")),
        ({"FLUXUP_KUBECONFIG": "", "KUBECONFIG": "/b"}, "kubeconfig", Path("/b")),
        ({"KUBECONFIG": ""}, "kubeconfig", None),
        ({"FLUXUP_ACTIVE_POLL_SECONDS": "0.25"}, "active_poll_seconds", 0.25),
        ({"FLUXUP_ACTIVE_POLL_SECONDS": "3"}, "active_poll_seconds", 3.0),
        ({"FLUXUP_IDLE_RESYNC_SECONDS": "300"}, "idle_resync_seconds", 300.0),
        ({"FLUXUP_IDLE_RESYNC_SECONDS": " 1e2 "}, "idle_resync_seconds", 100.0),
        ({"FLUXUP_GIT_AUTHOR_NAME": "Robot"}, "git_author_name", "Robot"),
        ({"FLUXUP_GIT_AUTHOR_EMAIL": "robot@example.org"}, "git_author_email", "robot@example.org"),
    ],
)
def test_override(env: dict[str, str], field: str, value: Any) -> None:
    settings = Settings.from_env(env)
    assert getattr(settings, field) == value
    # nothing else changes
    assert {k: v for k, v in vars(settings).items() if k != field} == {
        k: v for k, v in vars(Settings()).items() if k != field
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("True", True),
        ("TRUE", True),
        ("1", True),
        ("yes", True),
        ("YES", True),
        ("false", False),
        ("False", False),
        ("0", False),
        ("no", False),
        ("No", False),
    ],
)
def test_boolean(text: str, expected: bool) -> None:
    env = {"FLUXUP_ALLOW_CROSS_NAMESPACE_REFS": text}
    assert Settings.from_env(env).allow_cross_namespace_refs is expected


@pytest.mark.parametrize("text", ["", "on", "off", "y", "2", "maybe", "true!"])
def test_invalid_boolean(text: str) -> None:
    with pytest.raises(ConfigError, match="FLUXUP_ALLOW_CROSS_NAMESPACE_REFS") as info:
        Settings.from_env({"FLUXUP_ALLOW_CROSS_NAMESPACE_REFS": text})
    assert "true or false" in str(info.value)  # says what to write instead


@pytest.mark.parametrize("name", ["FLUXUP_ACTIVE_POLL_SECONDS", "FLUXUP_IDLE_RESYNC_SECONDS"])
@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "not a number"),
        ("fast", "not a number"),
        ("1s", "not a number"),
        ("0", "must be positive"),
        ("-1", "must be positive"),
        ("-0.5", "must be positive"),
        ("nan", "must be positive"),
        ("inf", "must be positive"),
    ],
)
def test_invalid_number(name: str, text: str, complaint: str) -> None:
    with pytest.raises(ConfigError, match=name) as info:
        Settings.from_env({name: text})
    assert complaint in str(info.value)


def test_from_env_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLUXUP_NAMESPACE", "from-process")
    monkeypatch.setenv("FLUXUP_ALLOW_CROSS_NAMESPACE_REFS", "yes")
    settings = Settings.from_env()
    assert settings.namespace == "from-process"
    assert settings.allow_cross_namespace_refs is True


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(AttributeError):
        settings.namespace = "other"  # type: ignore[misc]


def test_git_backend_and_notification_settings() -> None:
    s = Settings.from_env({"FLUXUP_GIT_BACKEND": "gitlab", "FLUXUP_GIT_API_URL": "https://gl",
                           "FLUXUP_METRICS_ADDRESS": "127.0.0.1:9100",
                           "FLUXUP_NOTIFY_URLS_FILE": "/etc/n/urls",
                           "FLUXUP_FLUX_EVENTS_URL": "http://nc/"})
    assert (s.git_backend, s.git_api_url) == ("gitlab", "https://gl")
    assert s.metrics_host_port() == ("127.0.0.1", 9100)
    assert s.notify_urls_file == Path("/etc/n/urls")
    assert s.flux_events_url == "http://nc/"
    assert Settings.from_env({}).metrics_host_port() is None
    with pytest.raises(ConfigError, match="FLUXUP_GIT_BACKEND"):
        Settings.from_env({"FLUXUP_GIT_BACKEND": "svn"})
    with pytest.raises(ConfigError, match="host:port"):
        Settings.from_env({"FLUXUP_METRICS_ADDRESS": "9090"})


def test_renovate_settings() -> None:
    settings = Settings.from_env({
        "FLUXUP_RENOVATE_NODE": "/n/node", "FLUXUP_RENOVATE_JS": "/r/renovate.js",
        "FLUXUP_RENOVATE_INTERVAL_SECONDS": "3600", "FLUXUP_RENOVATE_TIMEOUT_SECONDS": "120",
        "FLUXUP_RENOVATE_INSECURE_REGISTRIES": "127.0.0.1:5000, registry.local",
        "FLUXUP_RENOVATE_INTERNAL_HOSTS": "charts.svc",
        "FLUXUP_RENOVATE_DISABLED_HOSTS": "docker.io",
        "FLUXUP_RENOVATE_SECRETS": "ghcr-creds,quay-creds",
    })
    assert settings.renovate_node == Path("/n/node")
    assert settings.renovate_js == Path("/r/renovate.js")
    assert settings.renovate_interval_seconds == 3600.0
    assert settings.renovate_timeout_seconds == 120.0
    assert settings.renovate_insecure_registries == ("127.0.0.1:5000", "registry.local")
    assert settings.renovate_internal_hosts == ("charts.svc",)
    assert settings.renovate_disabled_hosts == ("docker.io",)
    assert settings.renovate_secrets == ("ghcr-creds", "quay-creds")
    assert Settings.from_env({}).renovate_interval_seconds == 0.0  # scheduled scans are opt-in


@pytest.mark.parametrize(("name", "value", "message"), [
    ("FLUXUP_RENOVATE_INTERVAL_SECONDS", "10", "at least 60 s"),
    ("FLUXUP_RENOVATE_INTERVAL_SECONDS", "soon", "not a number"),
    ("FLUXUP_RENOVATE_INSECURE_REGISTRIES", "http://x:5000", "not HOST or HOST:PORT"),
    ("FLUXUP_RENOVATE_DISABLED_HOSTS", "user@host", "not HOST or HOST:PORT"),
])
def test_bad_renovate_settings(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({name: value})


def test_report_intake_settings() -> None:
    assert Settings().report_host_port() is None
    assert Settings().report_configmap_interval_seconds == 30.0
    settings = Settings.from_env({
        "FLUXUP_REPORT_ADDRESS": "0.0.0.0:8443",
        "FLUXUP_REPORT_CERT_FILE": "/etc/fluxup/report-tls/tls.crt",
        "FLUXUP_REPORT_KEY_FILE": "/etc/fluxup/report-tls/tls.key",
        "FLUXUP_REPORT_AUDIENCES": "fluxup, other",
        "FLUXUP_REPORT_CONFIGMAP_INTERVAL_SECONDS": "0",
    })
    assert settings.report_host_port() == ("0.0.0.0", 8443)
    assert settings.report_cert_file == Path("/etc/fluxup/report-tls/tls.crt")
    assert settings.report_audiences == ("fluxup", "other")
    assert settings.report_configmap_interval_seconds == 0.0


@pytest.mark.parametrize(("env", "message"), [
    ({"FLUXUP_REPORT_ADDRESS": "0.0.0.0:8443"}, "needs FLUXUP_REPORT_CERT_FILE"),
    ({"FLUXUP_REPORT_ADDRESS": "8443"}, "not host:port"),
    ({"FLUXUP_REPORT_CONFIGMAP_INTERVAL_SECONDS": "-1"}, "positive"),
])
def test_bad_report_settings(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)
