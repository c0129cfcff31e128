"""Choosing the Git backend for a ManagedApp's repository (clone or a forge's REST API)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from fluxup.adapters.git import GiteaBackend, GitHubBackend, GitLabBackend
from fluxup.adapters.gitopen import GitOpenerCache, build_forge_location
from fluxup.adapters.kube import R, Resource
from fluxup.api.managedapp import GitSource
from fluxup.errors import ConfigError
from fluxup.settings import Settings


class Objects:
    """A Kube with a GitRepository and its Secret (only list/get are used here)."""

    def __init__(self, url: str, data: dict[str, str]) -> None:
        self.url = url
        self.data = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}

    async def list(self, res: Resource, namespace: str | None = None,
                   labels: Any = None) -> list[dict[str, Any]]:
        assert res == R.GITREPOSITORY
        return [{"metadata": {"namespace": "flux-system", "name": "cluster"},
                 "spec": {"url": self.url, "secretRef": {"name": "git"}}}]

    async def get(self, res: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        assert (res, namespace, name) == (R.SECRET, "flux-system", "git")
        return {"data": self.data}


@pytest.mark.parametrize(("backend", "url", "kind", "name"), [
    ("github", "https://github.com/home/cluster.git", GitHubBackend, "home/cluster@main"),
    ("github", "https://ghe.corp/home/cluster", GitHubBackend, "home/cluster@main"),
    ("gitlab", "https://gitlab.com/home/infra/cluster", GitLabBackend,
     "home/infra/cluster@main"),
    ("gitea", "https://git.home/home/cluster", GiteaBackend, "home/cluster@main"),
])
async def test_forge_backend_from_settings(backend: str, url: str, kind: type,
                                           name: str) -> None:
    opener = GitOpenerCache(Objects(url, {"username": "x", "password": "tok"}),  # type: ignore[arg-type]
                            Settings(git_backend=backend))
    opened = await opener(GitSource(repository_url=url, branch="main"), "apps")
    assert isinstance(opened, kind)
    assert name in repr(opened)
    assert "tok" not in repr(opened)
    await opener.aclose()


async def test_forge_backend_needs_a_token() -> None:
    opener = GitOpenerCache(Objects("https://github.com/a/b", {"identity": "KEY"}),  # type: ignore[arg-type]
                            Settings(git_backend="github"))
    with pytest.raises(ConfigError, match="needs a token"):
        await opener(GitSource(repository_url="https://github.com/a/b"), "apps")


def test_forge_location() -> None:
    assert build_forge_location("https://user@gitlab.com/a/b/c.git") == ("https", "gitlab.com",
                                                                        "a/b/c")
    with pytest.raises(ConfigError):
        build_forge_location("ssh://git@github.com/a/b")
    with pytest.raises(ConfigError):
        build_forge_location("https://github.com/justowner")
