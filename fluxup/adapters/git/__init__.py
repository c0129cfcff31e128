"""Git adapters: the :class:`GitBackend` interface and its implementations.

``cli`` drives the plain ``git`` program (HTTPS or SSH, any forge); ``gitea``,
``github`` and ``gitlab`` talk to those forges' REST APIs. Reconcilers depend on
:class:`GitBackend` only.
"""

from fluxup.adapters.git.base import CommitResult, FileContent, GitBackend, Identity
from fluxup.adapters.git.cli import GitCliBackend, HttpCredentials, SshCredentials
from fluxup.adapters.git.gitea import GiteaBackend
from fluxup.adapters.git.github import GitHubBackend
from fluxup.adapters.git.gitlab import GitLabBackend

__all__ = [
    "CommitResult",
    "FileContent",
    "GitBackend",
    "GitCliBackend",
    "GitHubBackend",
    "GitLabBackend",
    "GiteaBackend",
    "HttpCredentials",
    "Identity",
    "SshCredentials",
]
