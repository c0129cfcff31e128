"""Read a Renovate 44 report (``reportType=file``) or log, strictly, into typed findings.

Called by the scan runner (a report FluxUp's own Renovate wrote), by the ingest endpoint
and the ConfigMap ingest (reports from a Renovate that runs elsewhere), and by
``fluxup scan --report``. The input is untrusted: anything that is not the shape
Renovate writes — wrong types, oversized documents or strings, too many files, deps or
updates, a ``packageFile`` outside the repository, a manager FluxUp does not map, a
version with characters no chart or tag has — raises :class:`RenovateReportError`
naming the JSON path, and nothing is returned, so nothing gets changed.

Shapes (measured against Renovate 44.121.2, see ``docs/renovate.md``)::

    {"problems": [LogRecord], "repositories": {"<repo>": {"problems": [LogRecord],
     "packageFiles": {"<manager>": [{"packageFile": "path", "deps": [Dep]}]}}}}

The older interface, the debug log line ``"packageFiles with updates"`` (payload under
``config``), is accepted by :func:`parse_log` for compatibility; the log also tells an
aborted run (``"Repository finished"`` with a ``result``) from a clean one.
Pure; no I/O.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NotRequired, TypedDict

from fluxup.errors import ConfigError

__all__ = [
    "MANAGERS",
    "MAX_REPORT_BYTES",
    "VERSIONED_DATASOURCES",
    "Dep",
    "RenovateReportError",
    "RepositoryReport",
    "Update",
    "check_package_file",
    "parse_log",
    "parse_package_files",
    "parse_report",
    "parse_report_object",
]

#: The managers FluxUp configures and maps; a report with any other is refused.
MANAGERS: Final = frozenset({"flux", "helm-values", "kubernetes"})
#: Largest report accepted (a 1,000-app fleet reports a few MB).
#: Datasources whose versions FluxUp maps (and may write to Git): strictly checked.
VERSIONED_DATASOURCES: Final = frozenset({"helm", "docker"})
MAX_REPORT_BYTES: Final = 32 * 1024 * 1024
MAX_LOG_BYTES: Final = 64 * 1024 * 1024
MAX_REPOSITORIES: Final = 64
MAX_PACKAGE_FILES: Final = 20_000
MAX_DEPS: Final = 100_000
MAX_DEPS_PER_FILE: Final = 2_000
MAX_UPDATES_PER_DEP: Final = 64
MAX_PROBLEMS: Final = 200
MAX_STRING: Final = 1024
MAX_PATH: Final = 1024
#: What a chart version or image tag may contain (OCI tag grammar plus semver ``+``).
_VERSION_TEXT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+-]{0,127}$")
_UPDATE_TYPES: Final = frozenset(
    {"major", "minor", "patch", "digest", "pin", "pinDigest", "rollback", "replacement", "bump"}
)
_PROBLEM_TEXT = 300


class RenovateReportError(ConfigError):
    """The report (or log) is not what Renovate writes; ``path`` names the first bad part.

    Nothing was changed because of it."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(
            f"Renovate report rejected at {path or 'the top level'}: {problem}; nothing was "
            "changed (send the report.json Renovate writes with reportType=file)"
        )


# --- wire format (what Renovate writes) ----------------------------------------------


class WireUpdate(TypedDict):
    newValue: str
    newVersion: NotRequired[str]
    updateType: NotRequired[str]
    isRange: NotRequired[bool]


class WireDep(TypedDict):
    depName: str
    packageName: NotRequired[str]
    datasource: NotRequired[str]
    currentValue: NotRequired[str]
    currentVersion: NotRequired[str]
    replaceString: NotRequired[str]
    registryUrl: NotRequired[str]
    registryUrls: NotRequired[list[str]]
    skipReason: NotRequired[str]
    warnings: NotRequired[list[dict[str, str]]]
    updates: NotRequired[list[WireUpdate]]


class WirePackageFile(TypedDict):
    packageFile: str
    deps: list[WireDep]


class WireRepository(TypedDict):
    problems: NotRequired[list[dict[str, Any]]]
    packageFiles: dict[str, list[WirePackageFile]]


class WireReport(TypedDict):
    problems: NotRequired[list[dict[str, Any]]]
    repositories: dict[str, WireRepository]


# --- parsed form ---------------------------------------------------------------------


@dataclass(frozen=True)
class Update:
    """One newer version Renovate offers for a dep."""

    new_value: str
    new_version: str
    update_type: str | None = None
    is_range: bool = False


@dataclass(frozen=True)
class Dep:
    """One dependency Renovate found in one file by one manager."""

    manager: str
    package_file: str
    dep_name: str
    package_name: str
    datasource: str
    current_value: str | None = None
    current_version: str | None = None
    replace_string: str | None = None
    registry_url: str | None = None
    registry_urls: tuple[str, ...] = ()
    skip_reason: str | None = None
    warnings: tuple[str, ...] = ()
    updates: tuple[Update, ...] = ()


@dataclass(frozen=True)
class RepositoryReport:
    """What Renovate reported for one repository.

    ``aborted`` is set when the run cannot be told apart from "no updates" or is known to
    have failed (empty ``packageFiles`` with problems, or the log's ``Repository finished``
    carries a ``result``): such a report must never clear updates found earlier.
    """

    repository: str
    deps: tuple[Dep, ...]
    problems: tuple[str, ...] = ()
    aborted: bool = False
    abort_reason: str = ""

    @property
    def package_files(self) -> frozenset[str]:
        return frozenset(d.package_file for d in self.deps)


# --- validation helpers --------------------------------------------------------------


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _obj(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise RenovateReportError(path, f"expected an object, got {_kind(value)}")
    return value


def _list(value: object, path: str, limit: int) -> Sequence[Any]:
    if not isinstance(value, list):
        raise RenovateReportError(path, f"expected a list, got {_kind(value)}")
    if len(value) > limit:
        raise RenovateReportError(path, f"{len(value)} entries; at most {limit} are accepted")
    return value


def _str(value: object, path: str, *, limit: int = MAX_STRING) -> str:
    if not isinstance(value, str):
        raise RenovateReportError(path, f"expected a string, got {_kind(value)}")
    if len(value) > limit:
        raise RenovateReportError(path, f"{len(value)} characters; at most {limit}")
    if "\x00" in value:
        raise RenovateReportError(path, "contains a NUL character")
    return value


def _opt_str(data: Mapping[str, Any], key: str, path: str) -> str | None:
    value = data.get(key)
    return None if value is None else _str(value, f"{path}.{key}")


def _version(value: object, path: str) -> str:
    text = _str(value, path, limit=128)
    if not _VERSION_TEXT.match(text):
        raise RenovateReportError(
            path, f"{text[:40]!r} is not a chart version or image tag (letters, digits, . _ + -)"
        )
    return text


def check_package_file(value: object, path: str) -> str:
    """A repository-relative, normalized path; anything that could leave the repo is refused."""
    text = _str(value, path, limit=MAX_PATH)
    if not text or text.startswith("/") or "\\" in text or re.match(r"^[A-Za-z]:", text):
        raise RenovateReportError(path, f"{text[:80]!r} is not a path relative to the repository")
    parts = text.split("/")
    if any(p in ("", ".", "..") for p in parts) or posixpath.normpath(text) != text:
        raise RenovateReportError(path, f"{text[:80]!r} leaves or does not name a repository file")
    if any(ord(c) < 32 for c in text):
        raise RenovateReportError(path, "contains control characters")
    return text


def _problem(record: object, path: str) -> str:
    """A short, secret-free line for one WARN+ log record Renovate put in ``problems``."""
    data = _obj(record, path)
    msg = _str(data.get("msg", ""), f"{path}.msg", limit=MAX_REPORT_BYTES)[:_PROBLEM_TEXT]
    extras = []
    for key in ("hostType", "packageName", "depName", "host"):
        value = data.get(key)
        if isinstance(value, str) and len(value) <= 200:
            extras.append(f"{key}={value}")
    text = msg + (f" ({', '.join(extras)})" if extras else "")
    return re.sub(r"\s+", " ", text)[:_PROBLEM_TEXT]


def _problems(value: object, path: str) -> tuple[str, ...]:
    if value is None:
        return ()
    records = _list(value, path, 10_000)
    out = [_problem(r, f"{path}[{i}]") for i, r in enumerate(records)]
    return tuple(dict.fromkeys(out))[:MAX_PROBLEMS]


def _update(data: object, path: str, strict: bool) -> Update:
    """One update; ``strict`` (helm and docker deps, whose versions FluxUp may write to
    Git) requires version text, other datasources only a bounded string."""
    upd = _obj(data, path)
    check = _version if strict else (lambda v, p: _str(v, p, limit=256))
    new_value = _str(upd.get("newValue"), f"{path}.newValue", limit=128)
    if not upd.get("isRange"):
        new_value = check(new_value, f"{path}.newValue")
    raw_version = upd.get("newVersion")
    new_version = check(raw_version if raw_version is not None else new_value,
                        f"{path}.newVersion")
    update_type = upd.get("updateType")
    if update_type is not None:
        update_type = _str(update_type, f"{path}.updateType", limit=32)
        if update_type not in _UPDATE_TYPES:
            raise RenovateReportError(f"{path}.updateType", f"unknown update type {update_type!r}")
    is_range = upd.get("isRange", False)
    if not isinstance(is_range, bool):
        raise RenovateReportError(f"{path}.isRange",
                                  f"expected true or false, got {_kind(is_range)}")
    return Update(new_value, new_version, update_type, is_range)


def _warnings(value: object, path: str) -> tuple[str, ...]:
    if value is None:
        return ()
    out = []
    for i, item in enumerate(_list(value, path, 64)):
        entry = _obj(item, f"{path}[{i}]")
        out.append(_str(entry.get("message", ""), f"{path}[{i}].message", limit=4096)[:300])
    return tuple(out)


def _dep(data: object, manager: str, package_file: str, path: str) -> Dep:
    dep = _obj(data, path)
    dep_name = _str(dep.get("depName"), f"{path}.depName", limit=512)
    package_name = _opt_str(dep, "packageName", path) or dep_name
    datasource = _opt_str(dep, "datasource", path) or ""
    strict = datasource in VERSIONED_DATASOURCES
    updates = tuple(
        _update(u, f"{path}.updates[{i}]", strict)
        for i, u in enumerate(_list(dep.get("updates", []), f"{path}.updates",
                                    MAX_UPDATES_PER_DEP))
    )
    return Dep(
        manager=manager,
        package_file=package_file,
        dep_name=dep_name,
        package_name=package_name,
        datasource=datasource,
        current_value=_opt_str(dep, "currentValue", path),
        current_version=_opt_str(dep, "currentVersion", path),
        replace_string=_opt_str(dep, "replaceString", path),
        registry_url=_opt_str(dep, "registryUrl", path),
        registry_urls=tuple(
            _str(u, f"{path}.registryUrls[{i}]", limit=2048)
            for i, u in enumerate(_list(dep.get("registryUrls", []), f"{path}.registryUrls", 16))
        ),
        skip_reason=_opt_str(dep, "skipReason", path),
        warnings=_warnings(dep.get("warnings"), f"{path}.warnings"),
        updates=updates,
    )


def parse_package_files(value: object, path: str) -> tuple[Dep, ...]:
    """Every dep of a ``packageFiles`` object (report or log line ``config``)."""
    managers = _obj(value, path)
    deps: list[Dep] = []
    files = 0
    for manager, entries in managers.items():
        mpath = f"{path}.{manager}"
        if manager not in MANAGERS:
            raise RenovateReportError(
                mpath, f"unknown manager {str(manager)[:40]!r}; FluxUp maps "
                f"{', '.join(sorted(MANAGERS))} (set enabledManagers to these)"
            )
        for i, entry in enumerate(_list(entries, mpath, MAX_PACKAGE_FILES)):
            files += 1
            if files > MAX_PACKAGE_FILES:
                raise RenovateReportError(path, f"more than {MAX_PACKAGE_FILES} package files")
            fpath = f"{mpath}[{i}]"
            package_file = _obj(entry, fpath)
            name = check_package_file(package_file.get("packageFile"), f"{fpath}.packageFile")
            raw_deps = _list(package_file.get("deps"), f"{fpath}.deps", MAX_DEPS_PER_FILE)
            for j, raw in enumerate(raw_deps):
                deps.append(_dep(raw, manager, name, f"{fpath}.deps[{j}]"))
                if len(deps) > MAX_DEPS:
                    raise RenovateReportError(path, f"more than {MAX_DEPS} deps")
    return tuple(deps)


def _load_json(text: str | bytes, limit: int, what: str) -> Any:
    if len(text) > limit:
        raise RenovateReportError("", f"{what} is {len(text)} bytes; at most {limit} accepted")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise RenovateReportError("", f"{what} is not valid JSON ({str(exc)[:120]})") from None


def parse_report_object(data: object) -> tuple[RepositoryReport, ...]:
    """Validate an already decoded report (see :func:`parse_report`)."""
    report = _obj(data, "")
    global_problems = _problems(report.get("problems"), "problems")
    repositories = _obj(report.get("repositories"), "repositories")
    if len(repositories) > MAX_REPOSITORIES:
        raise RenovateReportError("repositories", f"at most {MAX_REPOSITORIES} repositories")
    out = []
    for name, repo_data in repositories.items():
        rpath = f"repositories.{name}"
        _str(name, rpath, limit=256)
        repo = _obj(repo_data, rpath)
        problems = global_problems + _problems(repo.get("problems"), f"{rpath}.problems")
        raw_files = repo.get("packageFiles")
        if raw_files is None:
            raw_files = {}
        deps = parse_package_files(raw_files, f"{rpath}.packageFiles")
        aborted = not deps and bool(problems)
        out.append(RepositoryReport(
            repository=name, deps=deps, problems=problems, aborted=aborted,
            abort_reason=f"Renovate found no dependencies and reported: {problems[-1]}"
            if aborted else "",
        ))
    return tuple(out)


def parse_report(text: str | bytes) -> tuple[RepositoryReport, ...]:
    """Parse the ``report.json`` Renovate writes (``reportType=file``); one entry per
    repository. Raises :class:`RenovateReportError` for anything else."""
    return parse_report_object(_load_json(text, MAX_REPORT_BYTES, "the report"))


def parse_log(text: str, repository: str = "local") -> RepositoryReport:
    """The findings of a JSON log (``LOG_FORMAT=json``, debug level) of one repository.

    Uses the ``"packageFiles with updates"`` line; a run whose ``"Repository finished"``
    line carries a ``result`` (an abort) or that has no such line is ``aborted``.
    """
    if len(text) > MAX_LOG_BYTES:
        raise RenovateReportError("", f"the log is {len(text)} bytes; at most {MAX_LOG_BYTES}")
    deps: tuple[Dep, ...] | None = None
    problems: list[str] = []
    finished: Mapping[str, Any] | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            continue  # Renovate prints only JSON records; a torn last line is not fatal
        if not isinstance(record, Mapping):
            continue
        msg = record.get("msg")
        level = record.get("level")
        if msg == "packageFiles with updates":
            deps = parse_package_files(record.get("config"), f"line {number}.config")
        elif msg == "Repository finished":
            finished = record
        elif isinstance(level, int) and level >= 40:
            problems.append(_problem(record, f"line {number}"))
    problems = list(dict.fromkeys(problems))[:MAX_PROBLEMS]
    reason = ""
    if finished is None:
        reason = "the log has no 'Repository finished' line (Renovate did not finish)"
    elif finished.get("result"):
        reason = f"Renovate aborted the repository: {str(finished.get('result'))[:80]}"
    elif deps is None:
        reason = "the log has no 'packageFiles with updates' line (run Renovate at debug level)"
    return RepositoryReport(repository, deps or (), tuple(problems), bool(reason), reason)
