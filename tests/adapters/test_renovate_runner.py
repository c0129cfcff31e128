"""The Renovate runner with the real Renovate 44 (Node 24) on the sandbox fleet's layout.

Starts the sandbox's Helm repository and OCI registry standalone (no Kubernetes), writes
the fleet's files into a local Git repository and runs :class:`RenovateRunner` with
FluxUp's generated config, as a scan does. Marked ``sandbox``: it starts sandbox
services and needs ``fluxup renovate install`` (a step of ``make test``).
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fluxup.adapters.renovate import RenovateRunner, RunResult
from fluxup.logic.renovate_config import HostRule, ScanPaths, build_renovate_config
from fluxup.logic.renovate_report import parse_report
from fluxup.sandbox.charts import package_demo_charts, start_chart_repo
from fluxup.sandbox.processes import stop_process
from fluxup.sandbox.registry import push_demo_artifacts, start_registry
from fluxup.sandbox.renovate import RenovateInstall, ensure_renovate
from fluxup.sandbox.seed import DemoApp, build_repo_files

pytestmark = pytest.mark.sandbox

HOSTILE_CONFIG = """\
require('fs').writeFileSync(process.env.MARKER || '/tmp/never', 'executed');
module.exports = { enabledManagers: [] };
"""


@dataclass(frozen=True)
class Services:
    chart_url: str
    registry_host: str


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    base = tmp_path_factory.mktemp("renovate-services")
    token = secrets.token_hex(6)
    chart_pid, chart_url = start_chart_repo(base / "charts", token, base / "logs")
    registry_pid, port = start_registry(base / "registry", token, base / "logs")
    try:
        push_demo_artifacts(f"http://127.0.0.1:{port}", package_demo_charts(base / "charts"))
        yield Services(chart_url, f"127.0.0.1:{port}")
    finally:
        stop_process(chart_pid, token)
        stop_process(registry_pid, token)


@pytest.fixture(scope="module")
def renovate() -> RenovateInstall:
    return ensure_renovate()


def _repo(path: Path, services: Services, extra: dict[str, str]) -> Path:
    files = build_repo_files(services.chart_url, services.registry_host, (
        DemoApp("web", "web", chart_version="1.2.0", image_tag="1.2.0"),
        DemoApp("db", "db", source="oci", chart_version="2.0.0", image_tag="2.0.0"),
    ))
    for rel, text in {**files, **extra}.items():
        target = path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "fleet"]):
        subprocess.run(["git", *args], cwd=path, env=env, check=True, capture_output=True)
    return path


async def _run(renovate: RenovateInstall, services: Services, tmp: Path, repo: Path,
               limit: float = 300) -> RunResult:
    runner = RenovateRunner(renovate.node, renovate.renovate_js, work_dir=tmp / "work",
                            timeout_seconds=limit)
    async with runner.workspace() as run_dir:
        config = build_renovate_config(
            ScanPaths(f"{run_dir}/base", f"{run_dir}/cache", f"{run_dir}/report.json"),
            [HostRule(services.registry_host, insecure=True, internal=True)])
        return await runner.run(repo, config, Path(run_dir))


async def test_lookup_run_reports_every_candidate_and_never_loads_repo_config(
    services: Services, renovate: RenovateInstall, tmp_path: Path
) -> None:
    marker = tmp_path / "config-js-ran"
    repo = _repo(tmp_path / "repo", services, {"config.js": HOSTILE_CONFIG.replace(
        "process.env.MARKER || '/tmp/never'", repr(str(marker)))})
    result = await _run(renovate, services, tmp_path, repo)
    assert result.ok, (result.describe_failure(), result.log)
    assert not marker.exists()  # the repository's config.js was never executed
    (report,) = parse_report(result.report or "")
    assert report.repository == "local"
    assert not report.aborted
    found = {(d.package_file, d.dep_name, d.datasource,
              tuple((u.new_version, u.update_type) for u in d.updates))
             for d in report.deps if d.datasource in ("helm", "docker")}
    image = f"{services.registry_host}/images/demo-app"
    assert found == {
        ("flux/apps/web/helmrelease.yaml", "demo-app", "helm",
         (("2.0.0", "major"), ("3.0.0", "major"))),
        ("flux/apps/web/helmrelease.yaml", image, "docker",
         (("2.0.0", "major"), ("3.0.0", "major"))),
        ("flux/apps/db/ocirepository.yaml", f"{services.registry_host}/charts/demo-app",
         "docker", (("3.0.0", "major"),)),
        ("flux/apps/db/helmrelease.yaml", image, "docker", (("3.0.0", "major"),)),
    }
    # the Renovate process is gone with its whole group; the report was read after it
    assert result.exit_code == 0
    assert result.finished


async def test_timeout_stops_the_run_and_says_so(
    services: Services, renovate: RenovateInstall, tmp_path: Path
) -> None:
    repo = _repo(tmp_path / "repo", services, {})
    result = await _run(renovate, services, tmp_path, repo, limit=0.5)
    assert result.timed_out
    assert not result.ok
    assert result.report is None
    assert "did not finish within" in result.describe_failure()
    assert not list((tmp_path / "work").iterdir())  # the run's private directory is gone
