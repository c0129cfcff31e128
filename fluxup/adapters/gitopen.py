"""Open the Git repository a ManagedApp lives in, with Flux's own credentials.

The operator finds the Flux ``GitRepository`` whose URL the ManagedApp's status names,
reads its ``secretRef`` Secret (``username``/``password`` for HTTPS, ``identity`` and
``known_hosts`` for SSH — Flux's documented keys) and returns a cached
:class:`~fluxup.adapters.git.cli.GitCliBackend` per (URL, branch), so the local clone is
reused between passes. Secrets never leave this module except inside the backend.

With ``FLUXUP_GIT_BACKEND`` set to ``gitea``, ``github`` or ``gitlab`` the repository is
reached through that forge's REST API instead (no clone), with the Secret's ``password``
as the token; the API address is ``FLUXUP_GIT_API_URL`` or derived from the repository
URL (``https://api.github.com`` for github.com, ``https://HOST/api/v3`` for GitHub
Enterprise, ``https://HOST`` for GitLab and Gitea).
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from fluxup.adapters.git.base import GitBackend
from fluxup.adapters.git.base import Identity as Author
from fluxup.adapters.git.cli import GitCliBackend, HttpCredentials, SshCredentials
from fluxup.adapters.git.gitea import GiteaBackend
from fluxup.adapters.git.github import GitHubBackend
from fluxup.adapters.git.gitlab import GitLabBackend
from fluxup.adapters.kube import Kube, R
from fluxup.api.managedapp import GitSource
from fluxup.errors import ConfigError
from fluxup.settings import Settings

__all__ = ["GitOpenerCache", "build_forge_location"]

FORGES = ("gitea", "github", "gitlab")


def build_forge_location(url: str) -> tuple[str, str, str]:
    """``(scheme, host[:port], owner/.../repo)`` of an HTTPS repository URL."""
    scheme, sep, rest = url.partition("://")
    host, _, path = rest.partition("/")
    path = path.strip("/").removesuffix(".git")
    if not sep or scheme not in ("http", "https") or not host or "/" not in path:
        raise ConfigError(
            f"{url} is not an http(s) repository URL such as https://github.com/owner/repo; "
            "the REST Git backends need one (use FLUXUP_GIT_BACKEND=git for SSH)"
        )
    return scheme, host.rpartition("@")[2], path


def _decode(data: dict[str, str], key: str) -> str | None:
    value = data.get(key)
    return base64.b64decode(value).decode() if value else None


class GitOpenerCache:
    """Callable ``(GitSource, namespace) -> GitBackend`` with one backend per repo+branch."""

    def __init__(self, kube: Kube, settings: Settings) -> None:
        self._kube = kube
        self._settings = settings
        self._backends: dict[tuple[str, str], GitBackend] = {}

    async def __call__(self, source: GitSource, namespace: str) -> GitBackend:
        branch = source.branch or "main"
        key = (source.repository_url, branch)
        if key not in self._backends:
            credentials = await self._credentials(source.repository_url)
            if self._settings.git_backend in FORGES:
                self._backends[key] = self._forge(source.repository_url, branch, credentials)
                return self._backends[key]
            digest = hashlib.sha256(f"{key}".encode()).hexdigest()[:16]
            self._backends[key] = GitCliBackend(
                url=source.repository_url, branch=branch,
                workdir=Path(self._settings.work_dir) / "git" / digest,
                credentials=credentials,
                author=Author(self._settings.git_author_name, self._settings.git_author_email),
            )
        return self._backends[key]

    def _forge(self, url: str, branch: str,
               credentials: HttpCredentials | SshCredentials | None) -> GitBackend:
        kind = self._settings.git_backend
        if not isinstance(credentials, HttpCredentials):
            raise ConfigError(
                f"the {kind} Git backend needs a token: put it as 'password' in the Secret "
                f"of the Flux GitRepository for {url}"
            )
        scheme, host, path = build_forge_location(url)
        author = Author(self._settings.git_author_name, self._settings.git_author_email)
        api = self._settings.git_api_url
        token = credentials.password
        if kind == "github":
            owner, _, repo = path.partition("/")
            default = ("https://api.github.com" if host == "github.com"
                       else f"{scheme}://{host}/api/v3")
            return GitHubBackend(owner=owner, repo=repo, branch=branch, token=token,
                                 base_url=api or default, author=author)
        if kind == "gitlab":
            return GitLabBackend(project=path, branch=branch, token=token,
                                 base_url=api or f"{scheme}://{host}", author=author)
        owner, _, repo = path.partition("/")
        return GiteaBackend(base_url=api or f"{scheme}://{host}", owner=owner, repo=repo,
                            branch=branch, token=token, author=author)

    async def _credentials(self, url: str) -> HttpCredentials | SshCredentials | None:
        for repo in await self._kube.list(R.GITREPOSITORY, None):
            if (repo.get("spec") or {}).get("url") != url:
                continue
            secret_ref = (repo["spec"].get("secretRef") or {}).get("name")
            if not secret_ref:
                return None
            secret = await self._kube.get(R.SECRET, repo["metadata"]["namespace"], secret_ref)
            data = secret.get("data") or {}
            identity = _decode(data, "identity")
            if identity:
                return SshCredentials(private_key=identity,
                                      known_hosts=_decode(data, "known_hosts"))
            username, password = _decode(data, "username"), _decode(data, "password")
            if password:
                return HttpCredentials(username=username or "git", password=password)
            raise ConfigError(f"Secret {repo['metadata']['namespace']}/{secret_ref} has "
                              "neither username/password nor identity")
        return None

    async def aclose(self) -> None:
        for backend in self._backends.values():
            await backend.aclose()
