"""The sandbox's GitOps repository: seeding it, adding apps, and Flux's bootstrap objects.

The repository is laid out like a real Flux fleet repo (templates in ``data/gitops``):

* ``flux/clusters/sandbox/`` — Flux Kustomizations applied by the root ``flux-system``
  Kustomization: ``repositories`` and one ``app-<name>`` per app (``apps/<name>.yaml``);
* ``flux/repositories/`` — the shared ``demo-charts`` HelmRepository (the chart repo);
* ``flux/apps/<name>/`` — the app's HelmRelease; an app whose chart comes from the OCI
  registry also gets its own OCIRepository there, because the OCIRepository tag is part of
  that app's upgrade identity (a shared one would upgrade every app at once).

All Git work is done with the real ``git`` CLI over smart HTTP against the sandbox Git
server (:mod:`fluxup.sandbox.gitserver`); credentials travel in an ``http.extraHeader``
passed through the environment, never on a command line or in a URL. Pushes that lose a
race are rebased and retried, so concurrent tests can each add their own app.

Callers: the sandbox launcher (seed + bootstrap) and integration tests (``add_app``,
``commit_files``). Nothing here talks to Kubernetes; :func:`build_flux_bootstrap` only
returns YAML for the caller to apply.
"""

from __future__ import annotations

import io
import os
import re
import string
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ruamel.yaml import YAML

from fluxup.errors import SandboxError
from fluxup.sandbox.gitserver import GitCredentials
from fluxup.sandbox.registry import DEMO_CHART_REPO, DEMO_IMAGE_REPO

__all__ = [
    "CLUSTER_PATH",
    "DEMO_APPS",
    "FLUX_NAMESPACE",
    "GIT_REPOSITORY",
    "DemoApp",
    "add_app",
    "build_app_files",
    "build_flux_bootstrap",
    "build_repo_files",
    "commit_files",
    "list_refs",
    "log_messages",
    "read_file",
    "remove_app",
    "seed_repo",
]

TEMPLATES = Path(__file__).resolve().parent / "data" / "gitops"
FLUX_NAMESPACE = "flux-system"
GIT_REPOSITORY = "flux-system"  # name of the GitRepository (and root Kustomization)
CLUSTER_PATH = "flux/clusters/sandbox"
AUTHOR = ("FluxUp Sandbox", "sandbox@fluxup.invalid")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_RACE_LOST = ("[rejected]", "[remote rejected]", "fetch first", "non-fast-forward",
              "failed to update ref", "cannot lock ref")


@dataclass(frozen=True)
class DemoApp:
    """One application in the fleet: a HelmRelease of ``demo-app`` in ``namespace``.

    ``source`` picks where the chart comes from: the shared HelmRepository
    (``spec.chart.spec``) or the app's own OCIRepository (``spec.chartRef``).
    ``wait=False`` installs and upgrades without waiting for readiness (works without
    a scheduler or volume provisioner).
    """

    name: str
    namespace: str
    source: Literal["helmrepository", "oci"] = "helmrepository"
    chart_version: str = "1.0.0"
    image_tag: str = "1.0.0"
    storage_class: str = ""
    create_namespace: bool = True
    wait: bool = False

    def __post_init__(self) -> None:
        for what, value, limit in (("name", self.name, 40), ("namespace", self.namespace, 63)):
            if len(value) > limit or not _DNS_LABEL.match(value):
                raise SandboxError(
                    f"app {what} {value!r} must be a DNS label of at most {limit} characters"
                )
        if self.source not in ("helmrepository", "oci"):
            raise SandboxError(f"app source {self.source!r} is not 'helmrepository' or 'oci'")


DEMO_APPS: tuple[DemoApp, ...] = (
    DemoApp("demo-helm", "demo-helm", source="helmrepository"),
    DemoApp("demo-oci", "demo-oci", source="oci"),
)


def _render(template: str, **values: str) -> str:
    return string.Template((TEMPLATES / template).read_text()).substitute(values)


def build_app_files(app: DemoApp, registry_host: str) -> dict[str, str]:
    """The files (repo path → text) that make up ``app``; ``registry_host`` is HOST:PORT."""
    values = {
        "name": app.name, "namespace": app.namespace, "chart_version": app.chart_version,
        "image_tag": app.image_tag, "image_repository": f"{registry_host}/{DEMO_IMAGE_REPO}",
        "chart_url": f"oci://{registry_host}/{DEMO_CHART_REPO}",
        "storage_class": app.storage_class, "disable_wait": "false" if app.wait else "true",
        "flux_namespace": FLUX_NAMESPACE,
        "git_repository": GIT_REPOSITORY,
    }
    app_dir = f"flux/apps/{app.name}"
    files = {f"{CLUSTER_PATH}/apps/{app.name}.yaml": _render("app/flux-kustomization.yaml",
                                                             **values)}
    if app.create_namespace:
        files[f"{app_dir}/namespace.yaml"] = _render("app/namespace.yaml", **values)
    if app.source == "oci":
        files[f"{app_dir}/ocirepository.yaml"] = _render("app/ocirepository.yaml", **values)
        files[f"{app_dir}/helmrelease.yaml"] = _render("app/helmrelease-oci.yaml", **values)
    else:
        files[f"{app_dir}/helmrelease.yaml"] = _render("app/helmrelease-helmrepository.yaml",
                                                       **values)
    return files


def build_repo_files(
    chart_repo_url: str, registry_host: str, apps: Sequence[DemoApp] = DEMO_APPS
) -> dict[str, str]:
    """Every file of a freshly seeded fleet repository (repo path → text)."""
    values = {"chart_repo_url": chart_repo_url.rstrip("/"), "flux_namespace": FLUX_NAMESPACE,
              "git_repository": GIT_REPOSITORY}
    files = {
        "README.md": (TEMPLATES / "README.md").read_text(),
        "flux/repositories/demo-charts.yaml": _render("repository/demo-charts.yaml", **values),
        f"{CLUSTER_PATH}/repositories.yaml": _render("clusters/repositories.yaml", **values),
    }
    for app in apps:
        files.update(build_app_files(app, registry_host))
    return files


def _git_env(credentials: GitCredentials) -> dict[str, str]:
    """Environment for git: no user/system config, no prompts, auth via extraHeader."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update({
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": AUTHOR[0], "GIT_AUTHOR_EMAIL": AUTHOR[1],
        "GIT_COMMITTER_NAME": AUTHOR[0], "GIT_COMMITTER_EMAIL": AUTHOR[1],
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: {credentials.basic_auth_header()}",
    })
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


def _git(
    args: Sequence[str], cwd: Path, env: Mapping[str, str], check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["git", *args], cwd=cwd, env=dict(env), capture_output=True,
                          text=True, timeout=120)
    if check and proc.returncode != 0:
        raise SandboxError(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc


def _write(workdir: Path, files: Mapping[str, str | None], env: Mapping[str, str]) -> None:
    for rel, text in files.items():
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            raise SandboxError(f"refusing to write {rel!r} outside the repository")
        target = workdir / rel
        if text is None:
            _git(["rm", "-r", "-q", "--ignore-unmatch", "--", rel], workdir, env)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        _git(["add", "--", rel], workdir, env)


def _push(workdir: Path, branch: str, env: Mapping[str, str], retries: int) -> str:
    for _ in range(retries):
        push = _git(["push", "-q", "origin", f"HEAD:refs/heads/{branch}"], workdir, env,
                    check=False)
        if push.returncode == 0:
            return _git(["rev-parse", "HEAD"], workdir, env).stdout.strip()
        if not any(marker in push.stderr for marker in _RACE_LOST):
            raise SandboxError(f"git push failed: {push.stderr.strip()}")
        _git(["fetch", "-q", "origin", branch], workdir, env)
        rebase = _git(["rebase", "-q", "FETCH_HEAD"], workdir, env, check=False)
        if rebase.returncode != 0:
            raise SandboxError(f"cannot rebase onto the new {branch}: {rebase.stderr.strip()}")
    raise SandboxError(f"git push to {branch} kept losing races after {retries} attempts")


def commit_files(
    repo_url: str,
    credentials: GitCredentials,
    files: Mapping[str, str | None],
    message: str,
    *,
    branch: str = "main",
    retries: int = 5,
) -> str:
    """Commit ``files`` (path → text, or None to delete a file or directory); its SHA.

    Clones ``repo_url``, commits only if something changed, pushes, and on a lost race
    fetches, rebases and pushes again. Returns the branch head after the push.
    """
    env = _git_env(credentials)
    with tempfile.TemporaryDirectory(prefix="fluxup-seed-") as tmp:
        workdir = Path(tmp) / "repo"
        _git(["clone", "-q", "--branch", branch, repo_url, str(workdir)], Path(tmp), env)
        _write(workdir, files, env)
        if not _git(["status", "--porcelain"], workdir, env).stdout.strip():
            return _git(["rev-parse", "HEAD"], workdir, env).stdout.strip()
        _git(["commit", "-q", "-m", message], workdir, env)
        return _push(workdir, branch, env, retries)


def read_file(
    repo_url: str, credentials: GitCredentials, path: str, *, branch: str = "main"
) -> str:
    """The text of ``path`` at the head of ``branch`` (a shallow clone, then discarded)."""
    env = _git_env(credentials)
    with tempfile.TemporaryDirectory(prefix="fluxup-seed-") as tmp:
        workdir = Path(tmp) / "repo"
        _git(["clone", "-q", "--depth=1", "--branch", branch, repo_url, str(workdir)],
             Path(tmp), env)
        target = workdir / path
        if ".." in Path(path).parts or not target.is_file():
            raise SandboxError(f"{path} is not a file in {repo_url}@{branch}")
        return target.read_text()


def log_messages(
    repo_url: str, credentials: GitCredentials, *, branch: str = "main", limit: int = 50
) -> list[str]:
    """Full messages of the newest ``limit`` commits of ``branch``, newest first."""
    env = _git_env(credentials)
    with tempfile.TemporaryDirectory(prefix="fluxup-seed-") as tmp:
        workdir = Path(tmp) / "repo"
        _git(["clone", "-q", f"--depth={limit}", "--branch", branch, repo_url, str(workdir)],
             Path(tmp), env)
        out = _git(["log", f"-{limit}", "--format=%B%x00"], workdir, env).stdout
    return [m.strip("\n") for m in out.split("\x00") if m.strip()]


def list_refs(repo_url: str, credentials: GitCredentials) -> dict[str, str]:
    """Every ref of the repository (``refs/heads/main`` → SHA), as ``git ls-remote`` lists
    them: what a test compares to show that nothing was pushed."""
    out = _git(["ls-remote", repo_url], Path(tempfile.gettempdir()), _git_env(credentials))
    refs = {}
    for line in out.stdout.splitlines():
        sha, _, ref = line.partition("\t")
        if ref:
            refs[ref] = sha
    return refs


def _branch_exists(repo_url: str, branch: str, env: Mapping[str, str]) -> bool:
    probe = _git(["ls-remote", "--heads", repo_url, branch], Path(tempfile.gettempdir()),
                 env, check=False)
    if probe.returncode == 0:
        return bool(probe.stdout.strip())
    if "not found" in probe.stderr:
        return False
    raise SandboxError(f"cannot reach {repo_url}: {probe.stderr.strip()}")


def seed_repo(
    git_url: str,
    credentials: GitCredentials,
    chart_repo_url: str,
    registry_host: str,
    apps: Sequence[DemoApp] = DEMO_APPS,
    *,
    name: str = "fleet",
    branch: str = "main",
) -> str:
    """Create ``<git_url>/<name>.git`` with the seeded fleet as its first commit; its URL.

    ``git_url`` is the Git server's base URL (``http://127.0.0.1:PORT``), ``chart_repo_url``
    the Helm repository URL and ``registry_host`` the OCI registry's ``HOST:PORT``. A
    repository whose ``branch`` already exists is left as it is (seeding is idempotent);
    use :func:`add_app` to add apps later.
    """
    repo_url = f"{git_url.rstrip('/')}/{name}.git"
    env = _git_env(credentials)
    if _branch_exists(repo_url, branch, env):
        return repo_url
    with tempfile.TemporaryDirectory(prefix="fluxup-seed-") as tmp:
        workdir = Path(tmp)
        _git(["init", "-q", f"--initial-branch={branch}"], workdir, env)
        _write(workdir, build_repo_files(chart_repo_url, registry_host, apps), env)
        _git(["commit", "-q", "-m", "Seed the FluxUp sandbox fleet"], workdir, env)
        _git(["push", "-q", repo_url, f"HEAD:refs/heads/{branch}"], workdir, env)
    return repo_url


def add_app(
    repo_url: str,
    credentials: GitCredentials,
    app: DemoApp,
    registry_host: str,
    *,
    branch: str = "main",
) -> str:
    """Commit ``app`` (its directory and Flux Kustomization) to the fleet; the new head SHA.

    Adding an app that is already there unchanged makes no commit.
    """
    return commit_files(repo_url, credentials, build_app_files(app, registry_host),
                        f"Add app {app.name} ({app.source}, chart {app.chart_version})",
                        branch=branch)


def remove_app(
    repo_url: str, credentials: GitCredentials, name: str, *, branch: str = "main"
) -> str:
    """Delete app ``name`` from the fleet (Flux prunes what it applied); the new head SHA."""
    files: dict[str, str | None] = {f"flux/apps/{name}": None,
                                    f"{CLUSTER_PATH}/apps/{name}.yaml": None}
    return commit_files(repo_url, credentials, files, f"Remove app {name}", branch=branch)


def build_flux_bootstrap(
    git_url: str,
    secret_name: str,
    credentials: GitCredentials,
    *,
    branch: str = "main",
    interval: str = "30s",
    path: str = f"./{CLUSTER_PATH}",
) -> str:
    """YAML for Flux to follow the fleet repo at ``git_url`` (the URL ``seed_repo`` returned).

    Documents: the ``flux-system`` namespace, the basic-auth Secret ``secret_name`` (it
    contains the password: apply it, never log it), the GitRepository ``flux-system`` that
    the fleet's Kustomizations name as their source, and the root Kustomization
    ``flux-system`` (interval 1m, prune, no wait) that applies ``path``.
    """
    namespace, name = FLUX_NAMESPACE, GIT_REPOSITORY
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": secret_name, "namespace": namespace},
            "stringData": {"username": credentials.username,
                           "password": credentials.password},
        },
        {
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"interval": interval, "timeout": "60s", "url": git_url,
                     "ref": {"branch": branch}, "secretRef": {"name": secret_name}},
        },
        {
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"interval": "1m", "retryInterval": "15s", "path": path, "prune": True,
                     "wait": False, "sourceRef": {"kind": "GitRepository", "name": name}},
        },
    ]
    yaml = YAML()
    yaml.default_flow_style = False
    out = io.StringIO()
    yaml.dump_all(docs, out)
    return out.getvalue()
