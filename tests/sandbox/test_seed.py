"""The seeded GitOps repository, pushed to and cloned from a real sandbox Git server."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from fluxup.errors import SandboxError
from fluxup.sandbox.gitserver import GitCredentials, start_git_server
from fluxup.sandbox.processes import stop_process
from fluxup.sandbox.seed import (
    DEMO_APPS,
    DemoApp,
    add_app,
    build_flux_bootstrap,
    commit_files,
    list_refs,
    remove_app,
    seed_repo,
)

CHART_REPO = "http://127.0.0.1:18080"
REGISTRY = "127.0.0.1:15000"


@dataclass(frozen=True)
class Git:
    base: str
    credentials: GitCredentials


@pytest.fixture(scope="module")
def git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Git]:
    base = tmp_path_factory.mktemp("seed-git")
    token = secrets.token_hex(6)
    pid, port, credentials = start_git_server(base / "srv", token, base / "logs")
    yield Git(f"http://127.0.0.1:{port}", credentials)
    assert stop_process(pid, token)


@pytest.fixture(scope="module")
def fleet(git_server: Git) -> str:
    return seed_repo(git_server.base, git_server.credentials, CHART_REPO, REGISTRY)


def run_git(*args: str, cwd: Path, creds: GitCredentials | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, GIT_TERMINAL_PROMPT="0")
    if creds:
        env.update(GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="http.extraHeader",
                   GIT_CONFIG_VALUE_0=f"Authorization: {creds.basic_auth_header()}")
    proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def clone(git_server: Git, url: str, dest: Path) -> Path:
    run_git("clone", "-q", url, str(dest), cwd=dest.parent, creds=git_server.credentials)
    return dest


def load(path: Path) -> dict[str, Any]:
    (doc,) = list(yaml.safe_load_all(path.read_text()))
    assert isinstance(doc, dict)
    return doc


def files_of(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")
            if p.is_file() and ".git" not in p.relative_to(root).parts}


def test_seeded_repo_has_flux_layout(git_server: Git, fleet: str, tmp_path: Path) -> None:
    assert fleet == f"{git_server.base}/fleet.git"
    repo = clone(git_server, fleet, tmp_path / "fleet")
    assert files_of(repo) == {
        "README.md",
        "flux/repositories/demo-charts.yaml",
        "flux/clusters/sandbox/repositories.yaml",
        "flux/clusters/sandbox/apps/demo-helm.yaml",
        "flux/clusters/sandbox/apps/demo-oci.yaml",
        "flux/apps/demo-helm/namespace.yaml",
        "flux/apps/demo-helm/helmrelease.yaml",
        "flux/apps/demo-oci/namespace.yaml",
        "flux/apps/demo-oci/ocirepository.yaml",
        "flux/apps/demo-oci/helmrelease.yaml",
    }
    assert run_git("log", "--format=%an <%ae>|%s", cwd=repo).strip() == (
        "FluxUp Sandbox <sandbox@fluxup.invalid>|Seed the FluxUp sandbox fleet")

    helm_repo = load(repo / "flux/repositories/demo-charts.yaml")
    assert (helm_repo["apiVersion"], helm_repo["kind"]) == (
        "source.toolkit.fluxcd.io/v1", "HelmRepository")
    assert helm_repo["metadata"] == {"name": "demo-charts", "namespace": "flux-system"}
    assert helm_repo["spec"]["url"] == CHART_REPO

    release = load(repo / "flux/apps/demo-helm/helmrelease.yaml")
    assert (release["apiVersion"], release["kind"]) == ("helm.toolkit.fluxcd.io/v2",
                                                        "HelmRelease")
    assert release["metadata"] == {"name": "demo-helm", "namespace": "demo-helm"}
    assert release["spec"]["interval"] == "1m"
    assert release["spec"]["chart"]["spec"] == {
        "chart": "demo-app", "version": "1.0.0", "interval": "1m",
        "sourceRef": {"kind": "HelmRepository", "name": "demo-charts",
                      "namespace": "flux-system"},
    }
    assert release["spec"]["values"]["image"] == {
        "repository": f"{REGISTRY}/images/demo-app", "tag": "1.0.0"}
    assert release["spec"]["install"]["disableWait"] is True
    assert release["spec"]["upgrade"]["remediation"]["retries"] == 0

    oci = load(repo / "flux/apps/demo-oci/ocirepository.yaml")
    assert (oci["apiVersion"], oci["kind"]) == ("source.toolkit.fluxcd.io/v1", "OCIRepository")
    assert oci["spec"]["url"] == f"oci://{REGISTRY}/charts/demo-app"
    assert oci["spec"]["ref"] == {"tag": "1.0.0"}
    assert oci["spec"]["insecure"] is True
    assert oci["spec"]["layerSelector"]["mediaType"] == (
        "application/vnd.cncf.helm.chart.content.v1.tar+gzip")
    oci_release = load(repo / "flux/apps/demo-oci/helmrelease.yaml")
    assert "chart" not in oci_release["spec"]
    assert oci_release["spec"]["chartRef"] == {
        "kind": "OCIRepository", "name": "demo-oci", "namespace": "demo-oci"}
    assert oci_release["spec"]["interval"] == "1m"
    assert oci_release["spec"]["values"]["image"]["tag"] == "1.0.0"

    for name in ("repositories", "apps/demo-helm", "apps/demo-oci"):
        ks = load(repo / f"flux/clusters/sandbox/{name}.yaml")
        assert (ks["apiVersion"], ks["kind"]) == ("kustomize.toolkit.fluxcd.io/v1",
                                                  "Kustomization")
        assert ks["metadata"]["namespace"] == "flux-system"
        assert ks["spec"]["sourceRef"] == {"kind": "GitRepository", "name": "flux-system"}
        assert ks["spec"]["prune"] is True
        assert ks["spec"]["wait"] is False
        assert ks["spec"]["interval"] == "1m"
        assert (repo / ks["spec"]["path"]).is_dir()
    assert load(repo / "flux/clusters/sandbox/apps/demo-oci.yaml")["spec"]["dependsOn"] == [
        {"name": "repositories"}]


def test_seeding_again_changes_nothing(git_server: Git, fleet: str, tmp_path: Path) -> None:
    before = run_git("ls-remote", fleet, "main", cwd=tmp_path, creds=git_server.credentials)
    assert seed_repo(git_server.base, git_server.credentials, "http://other", "x:1") == fleet
    after = run_git("ls-remote", fleet, "main", cwd=tmp_path, creds=git_server.credentials)
    assert before == after


def test_add_apps_concurrently_then_remove_one(
    git_server: Git, fleet: str, tmp_path: Path
) -> None:
    apps = [DemoApp(f"race-{i}", f"t-race-{i}", source="oci" if i % 2 else "helmrepository",
                    chart_version="1.1.0", image_tag="1.1.0", create_namespace=False)
            for i in range(3)]
    with ThreadPoolExecutor(len(apps)) as pool:
        shas = list(pool.map(lambda a: add_app(fleet, git_server.credentials, a, REGISTRY),
                             apps))
    assert len(set(shas)) == len(apps)  # every add made its own commit

    repo = clone(git_server, fleet, tmp_path / "after-add")
    head = run_git("rev-parse", "HEAD", cwd=repo).strip()
    assert head in shas
    for app in apps:
        app_dir = repo / "flux/apps" / app.name
        expected = {"helmrelease.yaml"} | ({"ocirepository.yaml"} if app.source == "oci"
                                           else set())
        assert {p.name for p in app_dir.iterdir()} == expected
        release = load(app_dir / "helmrelease.yaml")
        assert release["metadata"]["namespace"] == app.namespace
        assert release["spec"]["values"]["image"]["tag"] == "1.1.0"
        ks = load(repo / f"flux/clusters/sandbox/apps/{app.name}.yaml")
        assert ks["metadata"]["name"] == f"app-{app.name}"
        assert ks["spec"]["path"] == f"./flux/apps/{app.name}"

    # Adding the same app again is a no-op: no new commit.
    assert add_app(fleet, git_server.credentials, apps[0], REGISTRY) == head

    removed = remove_app(fleet, git_server.credentials, apps[0].name)
    run_git("pull", "-q", cwd=repo, creds=git_server.credentials)
    assert run_git("rev-parse", "HEAD", cwd=repo).strip() == removed
    assert not (repo / "flux/apps" / apps[0].name).exists()
    assert not (repo / f"flux/clusters/sandbox/apps/{apps[0].name}.yaml").exists()
    assert (repo / "flux/apps" / apps[1].name).is_dir()


def test_commit_files_edits_and_reports_head(
    git_server: Git, fleet: str, tmp_path: Path
) -> None:
    path = "flux/apps/demo-helm/helmrelease.yaml"
    repo = clone(git_server, fleet, tmp_path / "edit")
    text = (repo / path).read_text().replace('version: "1.0.0"', 'version: "1.1.0"')
    sha = commit_files(fleet, git_server.credentials, {path: text}, "Bump demo-helm to 1.1.0")
    run_git("pull", "-q", cwd=repo, creds=git_server.credentials)
    assert run_git("rev-parse", "HEAD", cwd=repo).strip() == sha
    assert load(repo / path)["spec"]["chart"]["spec"]["version"] == "1.1.0"
    assert run_git("log", "-1", "--format=%s", cwd=repo).strip() == "Bump demo-helm to 1.1.0"


def test_list_refs_names_every_branch_with_its_head(
    git_server: Git, fleet: str, tmp_path: Path
) -> None:
    head = commit_files(fleet, git_server.credentials, {"notes.txt": "refs\n"}, "Add notes")
    repo = clone(git_server, fleet, tmp_path / "refs")
    run_git("push", "-q", "origin", "HEAD:refs/heads/renovate/demo-app-2.x", cwd=repo,
            creds=git_server.credentials)
    refs = list_refs(fleet, git_server.credentials)
    assert refs["refs/heads/main"] == head
    assert refs["refs/heads/renovate/demo-app-2.x"] == head


def test_wrong_credentials_raise_without_leaking(git_server: Git, fleet: str) -> None:
    bad = GitCredentials(git_server.credentials.username, "not-the-password")
    with pytest.raises(SandboxError) as err:
        add_app(fleet, bad, DemoApp("nope", "nope"), REGISTRY)
    assert "not-the-password" not in str(err.value)
    assert git_server.credentials.password not in str(err.value)


@pytest.mark.parametrize(
    ("name", "namespace"), [("Upper", "ns"), ("a" * 41, "ns"), ("ok", "bad_ns"), ("-x", "ns")]
)
def test_app_names_must_be_dns_labels(name: str, namespace: str) -> None:
    with pytest.raises(SandboxError, match="DNS label"):
        DemoApp(name, namespace)


def test_flux_bootstrap_objects() -> None:
    creds = GitCredentials("fluxup", "pw-123")
    docs = list(yaml.safe_load_all(
        build_flux_bootstrap("http://127.0.0.1:1234/fleet.git", "fleet-git-auth", creds)))
    kinds = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert kinds == [("Namespace", "flux-system"), ("Secret", "fleet-git-auth"),
                     ("GitRepository", "flux-system"), ("Kustomization", "flux-system")]
    _, secret, source, root = docs
    assert secret["metadata"]["namespace"] == "flux-system"
    assert secret["stringData"] == {"username": "fluxup", "password": "pw-123"}
    assert source["apiVersion"] == "source.toolkit.fluxcd.io/v1"
    assert source["spec"]["url"] == "http://127.0.0.1:1234/fleet.git"
    assert source["spec"]["secretRef"] == {"name": "fleet-git-auth"}
    assert source["spec"]["ref"] == {"branch": "main"}
    assert source["spec"]["interval"] == "30s"
    assert root["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1"
    assert root["spec"] == {
        "interval": "1m", "retryInterval": "15s", "path": "./flux/clusters/sandbox",
        "prune": True, "wait": False,
        "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
    }


def test_demo_apps_cover_both_chart_sources() -> None:
    assert {a.source for a in DEMO_APPS} == {"helmrepository", "oci"}
