"""Reading Renovate 44's report and log: the real sample, and hostile or malformed input.

``data/renovate/report.json`` and ``renovate-log.jsonl`` are one real run of Renovate
44.121.2 (``dryRun=lookup``, ``reportType=file``, debug JSON log) over a Flux repository
with an HTTP Helm repository and a local OCI registry; ``data/renovate/sandbox-*`` are
recorded from FluxUp's own scans of the sandbox.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from fluxup.logic.renovate_report import (
    MAX_REPORT_BYTES,
    RenovateReportError,
    parse_log,
    parse_report,
    parse_report_object,
)

DATA = Path(__file__).parent / "data" / "renovate"


def _sample() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / "report.json").read_text())
    return data


def test_real_report_is_read_completely() -> None:
    (repo,) = parse_report((DATA / "report.json").read_text())
    assert repo.repository == "local"
    assert not repo.aborted
    assert repo.problems == ()
    assert len(repo.deps) == 15
    by_file = {(d.manager, d.package_file, d.dep_name, d.current_value): d for d in repo.deps}
    chart = by_file[("flux", "flux/apps/my-app/helmrelease.yaml", "my-app", "12.4.0")]
    assert chart.datasource == "helm"
    assert [(u.new_version, u.update_type) for u in chart.updates] == [
        ("12.5.0", "minor"), ("13.0.0", "major")]
    ranged = by_file[("flux", "flux/apps/analytics-db/helmrelease.yaml", "db", "1.1.x")]
    assert ranged.updates[0].new_value == "1.2.x"
    assert ranged.updates[0].new_version == "1.2.0"
    assert ranged.updates[0].is_range
    oci = by_file[("flux", "flux/apps/podinfo/ocirepository.yaml",
                   "127.0.0.1:5000/charts/podinfo", "6.5.0")]
    assert oci.replace_string == "tag: 6.5.0"
    assert oci.datasource == "docker"
    skipped = by_file[("flux", "flux/flux-system/gotk-components.yaml", "fluxcd/flux2", "v2.3.0")]
    assert skipped.skip_reason == "disabled"
    assert {d.manager for d in repo.deps} == {"flux", "helm-values", "kubernetes"}


def test_real_log_line_equals_the_report() -> None:
    from_log = parse_log((DATA / "renovate-log.jsonl").read_text())
    (from_report,) = parse_report((DATA / "report.json").read_text())
    assert not from_log.aborted, from_log.abort_reason
    assert from_log.deps == from_report.deps


def test_log_of_an_aborted_run_is_aborted() -> None:
    lines = [
        json.dumps({"name": "renovate", "level": 40, "msg": "Host error",
                    "hostType": "docker", "packageName": "nginx"}),
        json.dumps({"name": "renovate", "level": 30, "msg": "Repository finished",
                    "result": "external-host-error", "exitCode": 7, "durationMs": 1000}),
    ]
    report = parse_log("\n".join(lines))
    assert report.aborted
    assert "external-host-error" in report.abort_reason
    assert report.problems == ("Host error (hostType=docker, packageName=nginx)",)


def test_log_without_finish_line_is_aborted() -> None:
    report = parse_log((DATA / "renovate-log.jsonl").read_text().rsplit("\n", 6)[0])
    assert report.aborted


def test_aborted_report_cannot_pass_for_no_updates() -> None:
    """Renovate 44 writes ``packageFiles: {}`` plus problems when it aborts a repo."""
    data = {"problems": [], "repositories": {"local": {
        "problems": [{"name": "renovate", "level": 40, "msg": "Host error",
                      "hostType": "docker", "err": {"message": "ENOTFOUND"}}],
        "branches": [], "packageFiles": {}}}}
    (repo,) = parse_report_object(data)
    assert repo.aborted
    assert repo.deps == ()
    assert "Host error" in repo.abort_reason


def test_clean_report_without_deps_is_not_aborted() -> None:
    (repo,) = parse_report_object({"repositories": {"local": {"packageFiles": {}}}})
    assert not repo.aborted


def _mutate(path: list[Any], value: Any) -> dict[str, Any]:
    data = _sample()
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


FLUX0 = ["repositories", "local", "packageFiles", "flux", 0]


@pytest.mark.parametrize(
    ("path", "value", "where", "message"),
    [
        (["repositories"], [], "repositories", "expected an object, got list"),
        (["repositories"], KeyError, "repositories", "expected an object, got null"),
        ([*FLUX0, "packageFile"], "../../etc/passwd", "flux[0].packageFile", "leaves"),
        ([*FLUX0, "packageFile"], "/etc/passwd", "flux[0].packageFile", "not a path relative"),
        ([*FLUX0, "packageFile"], "a/./b.yaml", "flux[0].packageFile", "leaves"),
        ([*FLUX0, "packageFile"], "a//b.yaml", "flux[0].packageFile", "leaves"),
        ([*FLUX0, "packageFile"], "C:\\x.yaml", "flux[0].packageFile", "not a path relative"),
        ([*FLUX0, "packageFile"], 7, "flux[0].packageFile", "expected a string, got int"),
        ([*FLUX0, "deps"], {}, "flux[0].deps", "expected a list"),
        ([*FLUX0, "deps", 0, "depName"], None, "deps[0].depName", "expected a string"),
        ([*FLUX0, "deps", 0, "updates"], "x", "deps[0].updates", "expected a list"),
        ([*FLUX0, "deps", 0, "updates", 0, "newVersion"], "1.2.0; rm -rf /",
         "updates[0].newVersion", "not a chart version"),
        ([*FLUX0, "deps", 0, "updates", 0, "newVersion"], "1.2.0\nx: y",
         "updates[0].newVersion", "not a chart version"),
        ([*FLUX0, "deps", 0, "updates", 0, "updateType"], "sideways",
         "updates[0].updateType", "unknown update type"),
        ([*FLUX0, "deps", 0, "updates", 0, "isRange"], "yes",
         "updates[0].isRange", "true or false"),
        ([*FLUX0, "deps", 0, "depName"], "x" * 5000, "deps[0].depName", "at most 512"),
        ([*FLUX0, "deps", 0, "updates"], [{"newValue": "1.0.0"}] * 65, "deps[0].updates",
         "at most 64"),
        (["repositories", "local", "packageFiles", "npm"], [], "packageFiles.npm",
         "unknown manager 'npm'"),
    ],
)
def test_hostile_reports_are_refused(path: list[Any], value: Any, where: str,
                                     message: str) -> None:
    data = _mutate(path, value)
    with pytest.raises(RenovateReportError) as info:
        parse_report(json.dumps(data))
    assert where in info.value.path
    assert message in info.value.problem
    assert "nothing was changed" in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON"),
        ("[1]", "expected an object"),
        ("[" * 100_000 + "]" * 100_000, "not valid JSON"),
        (" " * (MAX_REPORT_BYTES + 1), "at most"),
    ],
)
def test_malformed_documents_are_refused(text: str, message: str) -> None:
    with pytest.raises(RenovateReportError, match=message):
        parse_report(text)


def test_too_many_deps_in_one_file() -> None:
    data = _sample()
    deps = data["repositories"]["local"]["packageFiles"]["flux"][0]["deps"]
    data["repositories"]["local"]["packageFiles"]["flux"][0]["deps"] = deps * 3000
    with pytest.raises(RenovateReportError, match="at most 2000"):
        parse_report_object(data)


def test_problems_are_short_and_carry_no_error_objects() -> None:
    data = _sample()
    secret = "https://user:hunter2@registry.example/v2/"
    data["repositories"]["local"]["problems"] = [
        {"name": "renovate", "level": 40, "msg": "Error obtaining docker token",
         "err": {"url": secret}, "packageName": "x/y"},
        {"name": "renovate", "level": 40, "msg": "x" * 5000},
    ]
    (repo,) = parse_report_object(copy.deepcopy(data))
    assert repo.problems[0] == "Error obtaining docker token (packageName=x/y)"
    assert all("hunter2" not in p and len(p) <= 300 for p in repo.problems)
