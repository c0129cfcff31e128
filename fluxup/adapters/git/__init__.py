"""Git adapters: the :class:`GitBackend` interface and its implementations.

``cli`` drives the plain ``git`` program (HTTPS or SSH, any forge); ``gitea`` talks to
Gitea's REST API. Reconcilers depend on :class:`GitBackend` only.
"""

from fluxup.adapters.git.base import CommitResult, FileContent, GitBackend, Identity
from fluxup.adapters.git.cli import GitCliBackend, HttpCredentials, SshCredentials
from fluxup.adapters.git.gitea import GiteaBackend

__all__ = [
    "CommitResult",
    "FileContent",
    "GitBackend",
    "GitCliBackend",
    "GiteaBackend",
    "HttpCredentials",
    "Identity",
    "SshCredentials",
]
