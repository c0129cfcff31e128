"""Open the Git repository a ManagedApp lives in, with its own Flux GitRepository's
credentials.

The ManagedApp's status names the GitRepository its Kustomization uses
(``status.git.gitRepositoryRef``); credentials come from that object's ``secretRef``
Secret only — never from another tenant's GitRepository that happens to share the URL.
Flux's documented keys: ``username``/``password`` for HTTPS, ``identity`` and
``known_hosts`` for SSH (a key without ``known_hosts`` is refused, as Flux refuses it:
host keys are never trusted on first use). The Secret is read on every open, so a
rotated credential is used from the next pass on without a restart; one backend (for
``git``, its local clone) is kept per GitRepository, URL and branch, and replaced when
the credentials change. Secrets never leave this module except inside the backend.

With ``FLUXUP_GIT_BACKEND`` set to ``gitea``, ``github`` or ``gitlab`` the repository is
reached through that forge's REST API instead (no clone), with the Secret's ``password``
as the token; the API address is ``FLUXUP_GIT_API_URL`` or derived from the repository
URL (``https://api.github.com`` for github.com, ``https://HOST/api/v3`` for GitHub
Enterprise, ``https://HOST`` for GitLab and Gitea).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from pathlib import Path

from fluxup.adapters.git.base import GitBackend
from fluxup.adapters.git.base import Identity as Author
from fluxup.adapters.git.cli import GitCliBackend, HttpCredentials, SshCredentials
from fluxup.adapters.git.gitea import GiteaBackend
from fluxup.adapters.git.github import GitHubBackend
from fluxup.adapters.git.gitlab import GitLabBackend
from fluxup.adapters.kube import Kube, Obj, R
from fluxup.api.managedapp import GitSource
from fluxup.errors import ConfigError
from fluxup.settings import Settings

__all__ = ["GitOpenerCache", "build_forge_location"]

FORGES = ("gitea", "github", "gitlab")

Credentials = HttpCredentials | SshCredentials | None
_Key = tuple[str, str, str, str]


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


def _decode(data: dict[str, str], key: str, where: str) -> str | None:
    value = data.get(key)
    if not value:
        return None
    try:
        return base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ConfigError(f"Secret {where}: key {key} is not base64 text") from None


class GitOpenerCache:
    """Callable ``(GitSource, namespace) -> GitBackend``; see the module docstring."""

    def __init__(self, kube: Kube, settings: Settings) -> None:
        self._kube = kube
        self._settings = settings
        self._backends: dict[_Key, tuple[Credentials, GitBackend]] = {}

    async def __call__(self, source: GitSource, namespace: str) -> GitBackend:
        ref = source.git_repository_ref
        if ref is None:
            raise ConfigError(
                f"no GitRepository recorded for {source.repository_url} yet "
                "(status.git.gitRepositoryRef); FluxUp waits for the ManagedApp's discovery"
            )
        repo_ns = ref.namespace_or(namespace)
        repo = await self._kube.find(R.GITREPOSITORY, repo_ns, ref.name)
        if repo is None:
            raise ConfigError(f"GitRepository {repo_ns}/{ref.name} not found")
        url = str((repo.get("spec") or {}).get("url") or "")
        if url != source.repository_url:
            raise ConfigError(
                f"GitRepository {repo_ns}/{ref.name} now points to {url}, not "
                f"{source.repository_url}; FluxUp waits for the ManagedApp's discovery"
            )
        credentials = await self._credentials(repo)
        branch = source.branch or "main"
        key = (repo_ns, ref.name, url, branch)
        cached = self._backends.get(key)
        if cached is not None and cached[0] == credentials:
            return cached[1]
        backend: GitBackend
        if self._settings.git_backend in FORGES:
            backend = self._forge(url, branch, credentials)
        else:
            digest = hashlib.sha256(repr(key).encode()).hexdigest()[:16]
            backend = GitCliBackend(
                url=url, branch=branch,
                workdir=Path(self._settings.work_dir) / "git" / digest,
                credentials=credentials,
                author=Author(self._settings.git_author_name, self._settings.git_author_email),
            )
        self._backends[key] = (credentials, backend)
        return backend

    def _forge(self, url: str, branch: str, credentials: Credentials) -> GitBackend:
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

    async def _credentials(self, repo: Obj) -> Credentials:
        repo_ns = repo["metadata"]["namespace"]
        secret_name = ((repo.get("spec") or {}).get("secretRef") or {}).get("name")
        if not secret_name:
            return None
        where = f"{repo_ns}/{secret_name}"
        secret = await self._kube.get(R.SECRET, repo_ns, str(secret_name))
        data = secret.get("data") or {}
        identity = _decode(data, "identity", where)
        if identity:
            known_hosts = _decode(data, "known_hosts", where)
            if not (known_hosts or "").strip():
                raise ConfigError(
                    f"Secret {where} has an SSH identity but no known_hosts; FluxUp, like "
                    "Flux, never trusts a host key on first use: add the server's "
                    "known_hosts line to the Secret"
                )
            return SshCredentials(private_key=identity, known_hosts=known_hosts)
        username, password = _decode(data, "username", where), _decode(data, "password", where)
        if password:
            return HttpCredentials(username=username or "git", password=password)
        raise ConfigError(f"Secret {where} has neither username/password nor identity")

    async def aclose(self) -> None:
        for _, backend in self._backends.values():
            await backend.aclose()
