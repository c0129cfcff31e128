"""Open the Git repository a ManagedApp lives in, with Flux's own credentials.

The operator finds the Flux ``GitRepository`` whose URL the ManagedApp's status names,
reads its ``secretRef`` Secret (``username``/``password`` for HTTPS, ``identity`` and
``known_hosts`` for SSH — Flux's documented keys) and returns a cached
:class:`~fluxup.adapters.git.cli.GitCliBackend` per (URL, branch), so the local clone is
reused between passes. Secrets never leave this module except inside the backend.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from fluxup.adapters.git.base import GitBackend
from fluxup.adapters.git.base import Identity as Author
from fluxup.adapters.git.cli import GitCliBackend, HttpCredentials, SshCredentials
from fluxup.adapters.kube import Kube, R
from fluxup.api.managedapp import GitSource
from fluxup.errors import ConfigError
from fluxup.settings import Settings

__all__ = ["GitOpenerCache"]


def _decode(data: dict[str, str], key: str) -> str | None:
    value = data.get(key)
    return base64.b64decode(value).decode() if value else None


class GitOpenerCache:
    """Callable ``(GitSource, namespace) -> GitBackend`` with one backend per repo+branch."""

    def __init__(self, kube: Kube, settings: Settings) -> None:
        self._kube = kube
        self._settings = settings
        self._backends: dict[tuple[str, str], GitCliBackend] = {}

    async def __call__(self, source: GitSource, namespace: str) -> GitBackend:
        branch = source.branch or "main"
        key = (source.repository_url, branch)
        if key not in self._backends:
            credentials = await self._credentials(source.repository_url)
            digest = hashlib.sha256(f"{key}".encode()).hexdigest()[:16]
            self._backends[key] = GitCliBackend(
                url=source.repository_url, branch=branch,
                workdir=Path(self._settings.work_dir) / "git" / digest,
                credentials=credentials,
                author=Author(self._settings.git_author_name, self._settings.git_author_email),
            )
        return self._backends[key]

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
