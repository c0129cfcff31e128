"""Opening a ManagedApp's Git repository: credentials come only from the GitRepository
the app's Kustomization uses, a rotated Secret is picked up on the next open, an SSH key
without known_hosts is refused (against the sandbox's real Git server: smart HTTP, Basic
auth); the backend (clone or a forge's REST API) follows the settings."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import pytest

from fluxup.adapters.git import (
    GitCliBackend,
    GiteaBackend,
    GitHubBackend,
    GitLabBackend,
    SshCredentials,
)
from fluxup.adapters.gitopen import GitOpenerCache, build_forge_location
from fluxup.adapters.kube import R
from fluxup.api.managedapp import GitSource
from fluxup.api.meta import NamespacedObjectReference
from fluxup.errors import ConfigError, GitAuthError
from fluxup.settings import Settings
from tests.adapters.test_git_cli import SEED, Remote, Server, git_server
from tests.memkube import MemoryKube

__all__ = ["git_server"]  # the module-scoped Git server fixture


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _secret(kube: MemoryKube, namespace: str, name: str, **data: str) -> None:
    kube.put(R.SECRET, {"metadata": {"name": name, "namespace": namespace},
                        "data": {k: _b64(v) for k, v in data.items()}})


def _repo(kube: MemoryKube, namespace: str, url: str, secret: str | None) -> None:
    spec: dict[str, object] = {"url": url}
    if secret:
        spec["secretRef"] = {"name": secret}
    kube.put(R.GITREPOSITORY, {"metadata": {"name": "fleet", "namespace": namespace},
                               "spec": spec})


@pytest.fixture
def shared(git_server: Server, tmp_path: Path) -> tuple[MemoryKube, str, Server]:
    """One repository URL, two tenants' GitRepositories: only tenant-a's Secret is right."""
    url = f"http://127.0.0.1:{git_server.port}/test/{uuid.uuid4().hex}.git"
    basic = _b64(f"{git_server.username}:{git_server.password}")
    Remote(url=url, workdir=tmp_path,
           config=("-c", f"http.extraHeader=Authorization: Basic {basic}")).seed(SEED)
    kube = MemoryKube()
    _secret(kube, "tenant-a", "git-auth", username=git_server.username,
            password=git_server.password)
    _secret(kube, "tenant-b", "git-auth", username=git_server.username, password="wrong")
    _repo(kube, "tenant-a", url, "git-auth")
    _repo(kube, "tenant-b", url, "git-auth")
    return kube, url, git_server


def _source(url: str, namespace: str | None) -> GitSource:
    ref = NamespacedObjectReference("fleet", namespace) if namespace else None
    return GitSource(url, "main", "apps", None, ref)


async def test_credentials_come_from_the_recorded_git_repository_only(
    shared: tuple[MemoryKube, str, Server], tmp_path: Path
) -> None:
    kube, url, _ = shared
    opener = GitOpenerCache(kube, Settings(work_dir=tmp_path / "work"))
    mine = await opener(_source(url, "tenant-a"), "apps")
    assert (await mine.read_file("README.md")).text == SEED["README.md"]
    theirs = await opener(_source(url, "tenant-b"), "apps")  # same URL, other tenant
    with pytest.raises(GitAuthError):
        await theirs.read_file("README.md")


async def test_a_rotated_secret_is_used_on_the_next_open(
    shared: tuple[MemoryKube, str, Server], tmp_path: Path
) -> None:
    kube, url, server = shared
    opener = GitOpenerCache(kube, Settings(work_dir=tmp_path / "work"))
    with pytest.raises(GitAuthError):
        await (await opener(_source(url, "tenant-b"), "b")).read_file("README.md")
    _secret(kube, "tenant-b", "git-auth", username=server.username, password=server.password)
    backend = await opener(_source(url, "tenant-b"), "b")
    assert (await backend.read_file("README.md")).text == SEED["README.md"]
    assert await opener(_source(url, "tenant-b"), "b") is backend  # unchanged: reused


async def test_no_recorded_git_repository_is_refused(tmp_path: Path) -> None:
    opener = GitOpenerCache(MemoryKube(), Settings(work_dir=tmp_path))
    with pytest.raises(ConfigError, match=r"no GitRepository recorded .*gitRepositoryRef"):
        await opener(_source("https://git.example/fleet.git", None), "apps")


async def test_a_git_repository_moved_to_another_url_is_refused(tmp_path: Path) -> None:
    kube = MemoryKube()
    _repo(kube, "apps", "https://git.example/other.git", None)
    opener = GitOpenerCache(kube, Settings(work_dir=tmp_path))
    with pytest.raises(ConfigError, match=r"now points to https://git\.example/other\.git"):
        await opener(_source("https://git.example/fleet.git", "apps"), "apps")


async def test_an_ssh_key_without_known_hosts_is_refused(tmp_path: Path) -> None:
    kube = MemoryKube()
    _secret(kube, "apps", "ssh", identity="-----BEGIN OPENSSH PRIVATE KEY-----\nk\n")
    _repo(kube, "apps", "ssh://git@git.example/fleet.git", "ssh")
    opener = GitOpenerCache(kube, Settings(work_dir=tmp_path))
    with pytest.raises(ConfigError, match="Secret apps/ssh has an SSH identity but no "
                                          "known_hosts") as info:
        await opener(_source("ssh://git@git.example/fleet.git", "apps"), "apps")
    assert "-----BEGIN" not in str(info.value)
    with pytest.raises(ConfigError, match="never trusts a host key on first use"):
        GitCliBackend(url="ssh://git@git.example/fleet.git", branch="main", workdir=tmp_path,
                      credentials=SshCredentials("key"))


@pytest.mark.parametrize(("backend", "url", "kind", "name"), [
    ("github", "https://github.com/home/cluster.git", GitHubBackend, "home/cluster@main"),
    ("github", "https://ghe.corp/home/cluster", GitHubBackend, "home/cluster@main"),
    ("gitlab", "https://gitlab.com/home/infra/cluster", GitLabBackend,
     "home/infra/cluster@main"),
    ("gitea", "https://git.home/home/cluster", GiteaBackend, "home/cluster@main"),
])
async def test_forge_backend_from_settings(backend: str, url: str, kind: type,
                                           name: str) -> None:
    kube = MemoryKube()
    _secret(kube, "flux-system", "git", username="x", password="tok")
    _repo(kube, "flux-system", url, "git")
    opener = GitOpenerCache(kube, Settings(git_backend=backend))
    opened = await opener(_source(url, "flux-system"), "apps")
    assert isinstance(opened, kind)
    assert name in repr(opened)
    assert "tok" not in repr(opened)
    await opener.aclose()


async def test_forge_backend_needs_a_token() -> None:
    kube = MemoryKube()
    _secret(kube, "flux-system", "git", identity="KEY", known_hosts="github.com ssh-ed25519 A")
    _repo(kube, "flux-system", "https://github.com/a/b", "git")
    opener = GitOpenerCache(kube, Settings(git_backend="github"))
    with pytest.raises(ConfigError, match="needs a token"):
        await opener(_source("https://github.com/a/b", "flux-system"), "apps")


def test_forge_location() -> None:
    assert build_forge_location("https://user@gitlab.com/a/b/c.git") == ("https", "gitlab.com",
                                                                        "a/b/c")
    with pytest.raises(ConfigError):
        build_forge_location("ssh://git@github.com/a/b")
    with pytest.raises(ConfigError):
        build_forge_location("https://github.com/justowner")
