"""The Renovate configuration FluxUp generates."""

from __future__ import annotations

import json
import re

import pytest

from fluxup.errors import ConfigError
from fluxup.logic.renovate_config import HostRule, ScanPaths, build_renovate_config

PATHS = ScanPaths("/run/base", "/run/cache", "/run/out/report.json")


def test_lookup_only_report_file_and_exit_code() -> None:
    config = build_renovate_config(PATHS)
    assert config["platform"] == "local"
    assert config["dryRun"] == "lookup"
    assert (config["reportType"], config["reportPath"]) == ("file", "/run/out/report.json")
    assert config["exitCodeForErrors"] is True
    assert config["onboarding"] is False
    assert config["requireConfig"] == "optional"
    assert (config["baseDir"], config["cacheDir"]) == ("/run/base", "/run/cache")
    assert "fileMatch" not in json.dumps(config)  # removed option: would need migration


def test_only_the_mapped_managers_with_patterns() -> None:
    config = build_renovate_config(PATHS)
    assert config["enabledManagers"] == ["flux", "helm-values", "kubernetes"]
    for manager in config["enabledManagers"]:
        patterns = config[manager]["managerFilePatterns"]
        assert patterns
        assert all(p.startswith("/") and p.endswith("/") for p in patterns)
    flux = re.compile(config["flux"]["managerFilePatterns"][0][1:-1])
    assert flux.search("flux/apps/x/helmrelease.yaml")
    assert not flux.search("README.md")
    values = re.compile(config["helm-values"]["managerFilePatterns"][0][1:-1])
    assert values.search("apps/x/values.yaml")
    assert not values.search("apps/x/myvalues.yaml")


def test_every_candidate_and_no_unrelated_datasources() -> None:
    config = build_renovate_config(PATHS)
    assert config["separateMinorPatch"]
    assert config["separateMultipleMajor"]
    assert config["separateMultipleMinor"]
    (rule,) = config["packageRules"]
    assert rule["enabled"] is False
    assert set(rule["matchDatasources"]) == {"github-releases", "github-tags", "kubernetes-api"}


def test_host_rules() -> None:
    config = build_renovate_config(
        PATHS,
        [HostRule("127.0.0.1:5000", insecure=True, internal=True),
         HostRule("registry.example", host_type="docker", username="u", password="p"),
         HostRule("charts.example:8443", token="t"),
         HostRule("10.0.0.1:5000", insecure=True, username="u", password="p")],
        disabled_hosts=["docker.io", "quay.io:443"],
    )
    assert config["hostRules"] == [
        {"matchHost": "127.0.0.1", "hostType": "docker", "insecureRegistry": True},
        {"matchHost": "127.0.0.1", "allowInternal": True},
        {"matchHost": "registry.example", "hostType": "docker", "username": "u",
         "password": "p"},
        {"matchHost": "https://charts.example:8443", "token": "t"},
        {"matchHost": "10.0.0.1", "hostType": "docker", "insecureRegistry": True},
        {"matchHost": "http://10.0.0.1:5000", "username": "u", "password": "p"},
        {"matchHost": "docker.io", "enabled": False},
        {"matchHost": "https://quay.io:443", "enabled": False},
    ]


def test_credentials_stay_out_of_repr() -> None:
    rule = HostRule("registry.example", username="u", password="hunter2", token=None)
    assert "hunter2" not in repr(rule)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"match_host": "https://x"}, "is not HOST"),
        ({"match_host": "a b"}, "is not HOST"),
        ({"match_host": "x", "host_type": "npm"}, "not docker or helm"),
        ({"match_host": "x", "password": "p", "token": "t"}, "not both"),
    ],
)
def test_bad_host_rules(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        HostRule(**kwargs)  # type: ignore[arg-type]


def test_bad_disabled_host() -> None:
    with pytest.raises(ConfigError, match="disabled host"):
        build_renovate_config(PATHS, disabled_hosts=["http://x/"])
