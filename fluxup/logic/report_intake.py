"""What to ingest from a report pushed by a Renovate that runs elsewhere, as data.

Two routes bring such reports (``docs/renovate.md``), both handled by
:mod:`fluxup.reconcile.report_ingest`:

* the HTTPS endpoint (``POST /v1/renovate/report``): the body is a ``report.json``
  (``reportType=file``) or, with ``?format=log``, a JSON log; ``?repository=`` names the
  Git repository (URL, or the forge's ``org/name``) when the report's own name does not
  (a ``--platform=local`` run calls it ``local``);
* a ConfigMap in the operator's namespace labelled :data:`REPORT_LABEL` ``"true"`` with the
  report under :data:`REPORT_KEY` (or a log under :data:`LOG_KEY`) and optionally the
  repository in the annotation :data:`REPOSITORY_ANNOTATION`. It is ingested once per
  content: the operator records the content's digest (:data:`DIGEST_ANNOTATION`) and the
  outcome (:data:`RESULT_ANNOTATION`) on the ConfigMap.

Everything here validates before anything changes: :func:`build_ingest_items` raises
:class:`~fluxup.logic.renovate_report.RenovateReportError` (a ``ConfigError``) for a report
that is not Renovate's, or whose repository cannot be told. Pure; no I/O.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from fluxup.logic.renovate_report import (
    MAX_REPORT_BYTES,
    RenovateReportError,
    RepositoryReport,
    parse_log,
    parse_report,
)

__all__ = [
    "DIGEST_ANNOTATION",
    "LOG_KEY",
    "REPORT_KEY",
    "REPORT_LABEL",
    "REPOSITORY_ANNOTATION",
    "RESULT_ANNOTATION",
    "ConfigMapReport",
    "IngestItem",
    "ReportFormat",
    "build_configmap_record",
    "build_ingest_items",
    "check_repository",
    "determine_configmap_report",
]

#: Label (value ``"true"``) of the ConfigMaps in the operator's namespace that hold a report.
REPORT_LABEL: Final = "fluxup.dev/renovate-report"
#: Data key of a Renovate ``report.json``.
REPORT_KEY: Final = "report.json"
#: Data key of a Renovate JSON log (``LOG_FORMAT=json``, debug level; the older interface).
LOG_KEY: Final = "renovate.log"
#: The Git repository (URL or ``org/name``) the report is of; needed for ``local`` runs.
REPOSITORY_ANNOTATION: Final = "fluxup.dev/repository"
#: Written by the operator: sha256 of the content it last ingested.
DIGEST_ANNOTATION: Final = "fluxup.dev/report-digest"
#: Written by the operator: what the last ingest did, on one line.
RESULT_ANNOTATION: Final = "fluxup.dev/report-result"
_RESULT_CHARS = 500
_REPOSITORY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~:/@%+-]{0,2047}$")


class ReportFormat(enum.StrEnum):
    """What a pushed document is: Renovate's ``report.json``, or its JSON log."""

    REPORT = "report"
    LOG = "log"


@dataclass(frozen=True)
class IngestItem:
    """One repository's findings and the name to match apps with (``None``: the report's
    own repository name)."""

    report: RepositoryReport
    repository: str | None


def check_repository(value: str | None, where: str) -> str | None:
    """``value`` when it can be a Git URL or ``org/name``; ``None`` when empty."""
    if value is None or value == "":
        return None
    if not _REPOSITORY.match(value) or ".." in value:
        raise RenovateReportError(where, f"{value[:80]!r} is not a Git URL or org/name")
    return value


def build_ingest_items(text: str | bytes, fmt: ReportFormat,
                       repository: str | None) -> tuple[IngestItem, ...]:
    """Parse and check a pushed document; what to ingest, per repository."""
    if fmt is ReportFormat.LOG:
        raw = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        if len(raw) > MAX_REPORT_BYTES:
            raise RenovateReportError("", f"the log is {len(raw)} bytes; at most "
                                      f"{MAX_REPORT_BYTES} accepted")
        if repository is None:
            raise RenovateReportError("repository", "a log does not name its repository: "
                                      "give the Git URL (or org/name)")
        return (IngestItem(parse_log(raw, repository), repository),)
    reports = parse_report(text)
    if repository is not None and len(reports) != 1:
        raise RenovateReportError(
            "repositories", f"the report has {len(reports)} repositories; a repository can "
            "only be given for a report of exactly one")
    items = []
    for report in reports:
        if repository is None and report.repository == "local":
            raise RenovateReportError(
                "repositories.local", "the report is of a --platform=local run, which "
                "does not name its repository: give the Git URL (or org/name)")
        items.append(IngestItem(report, repository))
    return tuple(items)


@dataclass(frozen=True)
class ConfigMapReport:
    """A labelled ConfigMap whose content has not been ingested yet.

    ``problem`` is set (and ``text`` empty) when it cannot be ingested as it is; the
    operator records the problem instead of ingesting, once per content too."""

    namespace: str
    name: str
    resource_version: str
    digest: str
    text: str = ""
    fmt: ReportFormat = ReportFormat.REPORT
    repository: str | None = None
    problem: str = ""


def _digest(key: str, text: str, repository: str) -> str:
    hasher = hashlib.sha256()
    for part in (key, repository, text):
        hasher.update(part.encode("utf-8", "replace"))
        hasher.update(b"\0")
    return hasher.hexdigest()


def determine_configmap_report(configmap: Mapping[str, Any]) -> ConfigMapReport | None:
    """The report ``configmap`` holds, or ``None`` when this content was ingested already."""
    meta = configmap.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    data = configmap.get("data") or {}
    repository = str(annotations.get(REPOSITORY_ANNOTATION) or "")
    present = [k for k in (REPORT_KEY, LOG_KEY) if k in data]
    key = present[0] if len(present) == 1 else ",".join(present)
    text = str(data.get(key, "")) if len(present) == 1 else ""
    digest = _digest(key, text, repository)
    if annotations.get(DIGEST_ANNOTATION) == digest:
        return None
    base = ConfigMapReport(str(meta.get("namespace") or ""), str(meta.get("name") or ""),
                           str(meta.get("resourceVersion") or ""), digest)
    if len(present) != 1:
        return replace(base, problem=f"the ConfigMap needs exactly one of the keys "
                       f"{REPORT_KEY} and {LOG_KEY} (found {len(present)})")
    fmt = ReportFormat.LOG if key == LOG_KEY else ReportFormat.REPORT
    try:
        checked = check_repository(repository or None, f"annotation {REPOSITORY_ANNOTATION}")
    except RenovateReportError as exc:
        return replace(base, problem=str(exc))
    return replace(base, text=text, fmt=fmt, repository=checked)


def build_configmap_record(found: ConfigMapReport, result: str) -> dict[str, Any]:
    """The merge patch recording that ``found``'s content was handled, and how.

    It carries the ``resourceVersion`` read, so it fails (409) if the content changed
    meanwhile; the new content is then ingested on the next pass."""
    line = re.sub(r"\s+", " ", result).strip()[:_RESULT_CHARS]
    return {"metadata": {"resourceVersion": found.resource_version,
                         "annotations": {DIGEST_ANNOTATION: found.digest,
                                         RESULT_ANNOTATION: line}}}
