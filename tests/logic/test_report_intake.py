"""What a pushed report or a report ConfigMap makes FluxUp ingest (pure rules)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fluxup.logic.renovate_report import RenovateReportError
from fluxup.logic.report_intake import (
    DIGEST_ANNOTATION,
    LOG_KEY,
    REPORT_KEY,
    REPOSITORY_ANNOTATION,
    RESULT_ANNOTATION,
    ReportFormat,
    build_configmap_record,
    build_ingest_items,
    check_repository,
    determine_configmap_report,
)

DATA = Path(__file__).parent / "data" / "renovate"
REPORT = (DATA / "report.json").read_text()
LOG = (DATA / "renovate-log.jsonl").read_text()
URL = "https://git.example/org/fleet.git"


def _forge_report(*names: str) -> str:
    data = json.loads(REPORT)
    local = data["repositories"]["local"]
    data["repositories"] = {name: local for name in names}
    return json.dumps(data)


@pytest.mark.parametrize(("text", "fmt", "repository", "expected"), [
    # a --platform=local report names no repository: it must be given
    (REPORT, ReportFormat.REPORT, URL, [("local", URL)]),
    (REPORT, ReportFormat.REPORT, None, "--platform=local"),
    # a forge report names its repositories
    (_forge_report("org/fleet"), ReportFormat.REPORT, None, [("org/fleet", None)]),
    (_forge_report("org/a", "org/b"), ReportFormat.REPORT, None,
     [("org/a", None), ("org/b", None)]),
    (_forge_report("org/a", "org/b"), ReportFormat.REPORT, URL, "exactly one"),
    # the older interface: the "packageFiles with updates" line of a JSON debug log
    (LOG, ReportFormat.LOG, URL, [(URL, URL)]),
    (LOG, ReportFormat.LOG, None, "does not name its repository"),
    # not a report at all
    ("{", ReportFormat.REPORT, URL, "not valid JSON"),
    ('{"repositories": []}', ReportFormat.REPORT, URL, "expected an object"),
])
def test_build_ingest_items(text: str, fmt: ReportFormat, repository: str | None,
                            expected: Any) -> None:
    if isinstance(expected, str):
        with pytest.raises(RenovateReportError, match=expected):
            build_ingest_items(text.encode(), fmt, repository)
        return
    items = build_ingest_items(text.encode(), fmt, repository)
    assert [(i.report.repository, i.repository) for i in items] == expected
    assert all(len(i.report.deps) == 15 for i in items)


@pytest.mark.parametrize(("value", "ok"), [
    (None, True), ("", True), (URL, True), ("org/fleet", True),
    ("ssh://git@git.example:2222/org/fleet.git", True),
    ("org/../etc", False), ("has space", False), ("-flag", False), ("a\nb", False),
    ("x" * 3000, False),
])
def test_check_repository(value: str | None, ok: bool) -> None:
    if ok:
        assert check_repository(value, "repository") == (value or None)
    else:
        with pytest.raises(RenovateReportError, match="not a Git URL"):
            check_repository(value, "repository")


def _configmap(data: dict[str, str], annotations: dict[str, str] | None = None,
               rv: str = "7") -> dict[str, Any]:
    return {"metadata": {"name": "renovate", "namespace": "fluxup-system",
                         "resourceVersion": rv, "annotations": annotations or {}},
            "data": data}


def test_configmap_report_is_new_once_per_content() -> None:
    cm = _configmap({REPORT_KEY: REPORT}, {REPOSITORY_ANNOTATION: URL})
    found = determine_configmap_report(cm)
    assert found is not None
    assert (found.name, found.namespace, found.resource_version) == ("renovate",
                                                                     "fluxup-system", "7")
    assert (found.text, found.fmt, found.repository, found.problem) == (
        REPORT, ReportFormat.REPORT, URL, "")
    record = build_configmap_record(found, "ingested\n  local: 1 app(s)")
    assert record == {"metadata": {"resourceVersion": "7", "annotations": {
        DIGEST_ANNOTATION: found.digest, RESULT_ANNOTATION: "ingested local: 1 app(s)"}}}
    # recorded: the same content is not new, even in a later revision of the object
    cm["metadata"]["annotations"].update(record["metadata"]["annotations"])
    cm["metadata"]["resourceVersion"] = "8"
    assert determine_configmap_report(cm) is None
    # new content, or a different repository, is new again
    changed = _configmap({REPORT_KEY: REPORT + " "}, cm["metadata"]["annotations"])
    assert determine_configmap_report(changed) is not None
    moved = _configmap({REPORT_KEY: REPORT}, {**cm["metadata"]["annotations"],
                                              REPOSITORY_ANNOTATION: "org/other"})
    assert determine_configmap_report(moved) is not None


@pytest.mark.parametrize(("data", "annotations", "problem", "fmt"), [
    ({LOG_KEY: LOG}, {REPOSITORY_ANNOTATION: URL}, "", ReportFormat.LOG),
    ({}, {}, "exactly one of the keys", ReportFormat.REPORT),
    ({REPORT_KEY: REPORT, LOG_KEY: LOG}, {}, "exactly one of the keys", ReportFormat.REPORT),
    ({REPORT_KEY: REPORT}, {REPOSITORY_ANNOTATION: "a b"}, "not a Git URL",
     ReportFormat.REPORT),
])
def test_configmap_shapes(data: dict[str, str], annotations: dict[str, str], problem: str,
                          fmt: ReportFormat) -> None:
    found = determine_configmap_report(_configmap(data, annotations))
    assert found is not None
    assert found.fmt is fmt
    if problem:
        assert problem in found.problem
        assert found.text == ""
    else:
        assert found.problem == ""
    # a problem is recorded once per content too
    record = build_configmap_record(found, "rejected")
    again = _configmap(data, {**annotations, **record["metadata"]["annotations"]})
    assert determine_configmap_report(again) is None


def test_record_result_is_one_bounded_line() -> None:
    found = determine_configmap_report(_configmap({}))
    assert found is not None
    line = build_configmap_record(found, "x\n" * 1000)["metadata"]["annotations"][
        RESULT_ANNOTATION]
    assert "\n" not in line
    assert len(line) <= 500
