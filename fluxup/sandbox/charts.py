"""The sandbox's Helm chart repository: the ``demo-app`` chart in several versions.

Packages the chart source in ``data/charts/demo-app`` into one ``.tgz`` per version
(``version`` and ``appVersion`` rewritten; reproducible bytes, so digests are stable),
writes a Helm repository ``index.yaml`` and serves the directory over plain HTTP on
127.0.0.1 (``python -m http.server``). Flux's HelmRepository, Renovate's helm datasource and
:func:`fluxup.sandbox.registry.push_chart` consume what this module produces.

Called by the sandbox launcher and tests; it never touches anything outside the
directory it is given.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import sys
import tarfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ruamel.yaml import YAML

from fluxup.errors import SandboxError
from fluxup.sandbox.processes import free_port, is_ours, start_process, wait_until

__all__ = [
    "BROKEN_VERSION",
    "CHART_NAME",
    "CHART_SOURCE",
    "DEMO_VERSIONS",
    "ChartPackage",
    "build_chart_package",
    "build_index",
    "package_demo_charts",
    "publish_chart",
    "read_chart_metadata",
    "start_chart_repo",
    "unpublish_chart",
]

CHART_NAME = "demo-app"
CHART_SOURCE = Path(__file__).resolve().parent / "data" / "charts" / CHART_NAME
#: The last one is BROKEN_VERSION: Helm cannot render it, so upgrading to it fails.
DEMO_VERSIONS: tuple[str, ...] = ("1.0.0", "1.1.0", "1.2.0", "2.0.0", "3.0.0")
BROKEN_VERSION = "3.0.0"
_BROKEN_MESSAGE = "demo-app 3.0.0 is a deliberately broken release (sandbox failure tests)"
#: Fixed timestamp inside every package, so the same chart version always has one digest.
_PACKAGE_MTIME = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
_SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")


@dataclass(frozen=True)
class ChartPackage:
    """A packaged chart: the file and what Helm's index says about it."""

    path: Path
    name: str
    version: str
    app_version: str
    digest: str  # sha256 hex of the .tgz, as in index.yaml

    @property
    def filename(self) -> str:
        return self.path.name


def _rewrite_versions(chart_yaml: str, version: str, app_version: str) -> str:
    text, count = re.subn(r"(?m)^version:.*$", f"version: {version}", chart_yaml)
    text, app_count = re.subn(r"(?m)^appVersion:.*$", f'appVersion: "{app_version}"', text)
    if count != 1 or app_count != 1:
        raise SandboxError("chart Chart.yaml needs exactly one top-level version and appVersion")
    return text


def build_chart_package(
    source: Path, version: str, out_dir: Path, app_version: str | None = None
) -> ChartPackage:
    """Package the chart directory ``source`` as ``out_dir/<name>-<version>.tgz``.

    The archive has Helm's layout (``<name>/Chart.yaml``, ``<name>/templates/...``),
    sorted entries, fixed owners and timestamps: identical input gives identical bytes.
    """
    if not _SEMVER.match(version):
        raise SandboxError(f"chart version {version!r} is not semantic (MAJOR.MINOR.PATCH)")
    app_version = app_version or version
    try:
        meta = YAML(typ="safe").load((source / "Chart.yaml").read_text())
    except OSError:
        raise SandboxError(f"{source} has no readable Chart.yaml") from None
    name = str(meta["name"])
    files: dict[str, bytes] = {}
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        rel = path.relative_to(source).as_posix()
        data = path.read_bytes()
        if rel == "Chart.yaml":
            data = _rewrite_versions(data.decode(), version, app_version).encode()
        if rel == "values.yaml" and version == BROKEN_VERSION:
            broken = f'brokenRelease: "{_BROKEN_MESSAGE}"'.encode()
            data = data.replace(b'brokenRelease: ""', broken)
        files[f"{name}/{rel}"] = data
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", mtime=_PACKAGE_MTIME) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member_name, data in files.items():
            info = tarfile.TarInfo(member_name)
            info.size, info.mode, info.mtime = len(data), 0o644, _PACKAGE_MTIME
            tar.addfile(info, io.BytesIO(data))
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{name}-{version}.tgz"
    target.write_bytes(raw.getvalue())
    return ChartPackage(target, name, version, app_version,
                        hashlib.sha256(raw.getvalue()).hexdigest())


def read_chart_metadata(tgz: Path) -> dict[str, object]:
    """The parsed ``Chart.yaml`` of a packaged chart."""
    try:
        with tarfile.open(tgz, mode="r:gz") as tar:
            for member in tar.getmembers():
                parts = member.name.split("/")
                if len(parts) == 2 and parts[1] == "Chart.yaml" and member.isfile():
                    handle = tar.extractfile(member)
                    if handle is None:
                        break
                    meta = YAML(typ="safe").load(handle.read())
                    if not isinstance(meta, dict):
                        break
                    return dict(meta)
    except (OSError, tarfile.TarError) as exc:
        raise SandboxError(f"{tgz} is not a readable chart package: {exc}") from None
    raise SandboxError(f"{tgz} has no <chart>/Chart.yaml")


def package_demo_charts(
    out_dir: Path, versions: Sequence[str] = DEMO_VERSIONS
) -> list[ChartPackage]:
    """Package ``demo-app`` at each of ``versions`` into ``out_dir``."""
    return [build_chart_package(CHART_SOURCE, v, out_dir) for v in versions]


def _version_key(version: str) -> tuple[int, int, int, int, str]:
    core, _, pre = version.split("+")[0].partition("-")
    major, minor, patch = (int(x) for x in core.split("."))
    return major, minor, patch, 0 if pre else 1, pre


def build_index(
    packages: Sequence[ChartPackage], base_url: str, created: datetime | None = None
) -> str:
    """A Helm repository ``index.yaml`` (apiVersion v1) for ``packages`` served at ``base_url``.

    Entries are newest first per chart, as ``helm repo index`` writes them.
    """
    stamp = (created or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    entries: dict[str, list[dict[str, object]]] = {}
    for pkg in sorted(packages, key=lambda p: _version_key(p.version), reverse=True):
        meta = read_chart_metadata(pkg.path)
        entry: dict[str, object] = dict(meta)
        entry.update({
            "version": pkg.version,
            "appVersion": pkg.app_version,
            "created": stamp,
            "digest": pkg.digest,
            "urls": [f"{base_url.rstrip('/')}/{pkg.filename}"],
        })
        entries.setdefault(pkg.name, []).append(entry)
    yaml = YAML()
    yaml.default_flow_style = False
    out = io.StringIO()
    yaml.dump({"apiVersion": "v1", "entries": entries, "generated": stamp}, out)
    return out.getvalue()


def _packages_in(dir: Path) -> list[ChartPackage]:
    out = []
    for path in sorted(dir.glob("*.tgz")):
        meta = read_chart_metadata(path)
        out.append(ChartPackage(path, str(meta["name"]), str(meta["version"]),
                                str(meta.get("appVersion") or meta["version"]),
                                hashlib.sha256(path.read_bytes()).hexdigest()))
    return out


def _write_index(dir: Path, base_url: str) -> None:
    """Rewrite ``dir/index.yaml`` for every package in ``dir`` (atomically: the server may
    be answering a request for it)."""
    tmp = dir / "index.yaml.tmp"
    tmp.write_text(build_index(_packages_in(dir), base_url))
    tmp.replace(dir / "index.yaml")


def publish_chart(dir: Path, base_url: str, version: str) -> ChartPackage:
    """Add ``demo-app`` ``version`` to the repository served from ``dir`` at ``base_url``:
    package it next to the others and rewrite ``index.yaml`` (a new release, as a chart
    maintainer's ``helm package`` + ``helm repo index`` would publish it)."""
    package = build_chart_package(CHART_SOURCE, version, dir)
    _write_index(dir, base_url)
    return package


def unpublish_chart(dir: Path, base_url: str, version: str, name: str = CHART_NAME) -> None:
    """Withdraw chart ``name`` ``version`` from the repository in ``dir`` (package and
    index entry)."""
    target = dir / f"{name}-{version}.tgz"
    if not target.is_file():
        raise SandboxError(f"{target.name} is not published in {dir}")
    target.unlink()
    _write_index(dir, base_url)


def _serves_index(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{url}/index.yaml", timeout=2) as resp:
            return bool(resp.status == 200)
    except (OSError, urllib.error.HTTPError):
        return False


def start_chart_repo(
    dir: Path,
    token: str,
    log_dir: Path,
    *,
    port: int | None = None,
    versions: Sequence[str] = DEMO_VERSIONS,
) -> tuple[int, str]:
    """Package the demo charts into ``dir``, serve it on 127.0.0.1; return (pid, url).

    ``url`` (``http://127.0.0.1:PORT``, no trailing slash) is the HelmRepository URL.
    Pass the previous ``port`` to keep URLs stable across restarts.
    """
    dir = dir.resolve()
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    packages = package_demo_charts(dir, versions)
    index = dir / "index.yaml"
    tmp = dir / "index.yaml.tmp"
    tmp.write_text(build_index(packages, url))
    tmp.replace(index)
    argv = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
            "--directory", str(dir)]
    log = log_dir / "chart-repo.log"
    pid = start_process("chart-repo", argv, log_dir, token)
    # Until its exec completes, /proc shows the launcher without our token: wait that out
    # first, so the liveness check below only fails for a process that really exited.
    wait_until("chart repository to start", lambda: is_ours(pid, token), 10, log)
    wait_until("chart repository", lambda: _serves_index(url), 30,
               log, lambda: is_ours(pid, token))
    return pid, url
