"""GitHubBackend and GitLabBackend against local servers that behave like those forges'
REST APIs (tests/adapters/forges.py: no GitHub or GitLab is reachable here)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from fluxup.adapters.git import GitBackend, GitHubBackend, GitLabBackend, Identity
from fluxup.errors import (
    ConfigError,
    GitConflictError,
    GitNotFoundError,
    PushRejectedError,
)
from tests.adapters.forges import TOKEN, GitHub, GitLab, Repo, serve

RELEASE = 'kind: HelmRelease\nspec:\n  chart:\n    spec:\n      version: "18.1.0"\n'
UPGRADE = RELEASE.replace("18.1.0", "18.2.0")
VALUES = "image:\n  tag: 1.0.0\n"
MESSAGE = "chore(deps): update redis to 18.2.0\n\nManaged-By: fluxup\nUpgrade-Request: apps/up-1\n"


@dataclass
class Setup:
    repo: Repo
    backend: GitBackend
    kind: str


@pytest.fixture(params=["github", "gitlab"])
async def forge(request: pytest.FixtureRequest) -> AsyncIterator[Setup]:
    repo = Repo()
    repo.commit({"apps/redis/release.yaml": RELEASE, "apps/redis/values.yaml": VALUES,
                 "README.md": "# cluster\n"}, "initial")
    api = GitHub(repo) if request.param == "github" else GitLab(repo)
    async with serve(api) as url:
        backend: GitBackend
        if request.param == "github":
            backend = GitHubBackend(owner="home", repo="cluster", branch="main", token=TOKEN,
                                    base_url=url, author=Identity("FluxUp", "f@x.io"))
        else:
            backend = GitLabBackend(project="home/cluster", branch="main", token=TOKEN,
                                    base_url=url, author=Identity("FluxUp", "f@x.io"))
        yield Setup(repo, backend, request.param)
        await backend.aclose()


async def test_read_and_list(forge: Setup) -> None:
    b = forge.backend
    content = await b.read_file("apps/redis/release.yaml")
    assert content.text == RELEASE
    assert content.commit == forge.repo.head
    assert await b.list_files("apps/") == ["apps/redis/release.yaml", "apps/redis/values.yaml"]
    with pytest.raises(GitNotFoundError):
        await b.read_file("apps/nope.yaml")
    first = forge.repo.head
    forge.repo.commit({"apps/redis/release.yaml": UPGRADE}, "human")
    assert (await b.read_file("apps/redis/release.yaml", ref=first)).text == RELEASE
    with pytest.raises(ConfigError):
        await b.read_file("../etc/passwd")


async def test_atomic_multi_file_commit(forge: Setup) -> None:
    b, repo = forge.backend, forge.repo
    parent = repo.head
    result = await b.commit_files({"apps/redis/release.yaml": UPGRADE,
                                   "apps/redis/values.yaml": "image:\n  tag: 1.1.0\n",
                                   "apps/redis/NOTES.md": "new file\n"}, MESSAGE, parent)
    assert result.created
    assert repo.head == result.sha
    head = repo.commits[repo.head]
    assert head.parents == [parent]  # one commit holding all three files
    assert head.message == MESSAGE
    assert head.author["name"] == "FluxUp"
    assert head.tree["apps/redis/release.yaml"] == UPGRADE
    assert head.tree["apps/redis/NOTES.md"] == "new file\n"
    again = await b.commit_files({"apps/redis/release.yaml": UPGRADE}, MESSAGE, parent)
    assert not again.created
    assert again.sha == repo.head
    assert await b.find_commit("upgrade-request", "apps/up-1") == result.sha
    assert await b.find_commit("Upgrade-Request", "apps/up-2") is None


async def test_diff_preview_changes_nothing(forge: Setup) -> None:
    head = forge.repo.head
    diff = await forge.backend.diff_preview({"apps/redis/release.yaml": UPGRADE})
    assert '-      version: "18.1.0"\n+      version: "18.2.0"\n' in diff
    assert forge.repo.head == head


async def test_branch_moved_without_conflict_is_carried_over(forge: Setup) -> None:
    b, repo = forge.backend, forge.repo
    parent = repo.head
    repo.before_write.append(lambda: repo.commit({"README.md": "# edited\n"}, "human"))
    result = await b.commit_files({"apps/redis/release.yaml": UPGRADE}, MESSAGE, parent)
    assert result.created
    tree = repo.commits[repo.head].tree
    assert tree["README.md"] == "# edited\n"  # the human's change survives
    assert tree["apps/redis/release.yaml"] == UPGRADE
    # GitHub refuses the ref update (not a fast-forward) and FluxUp retries; GitLab locks
    # per file (last_commit_id), so an unrelated file's change does not refuse the commit
    assert len(repo.writes) == (2 if forge.kind == "github" else 1)


async def test_same_file_changed_during_the_write_is_retried(forge: Setup) -> None:
    b, repo = forge.backend, forge.repo
    repo.before_write.append(
        lambda: repo.commit({"apps/redis/values.yaml": "image:\n  tag: 0.9.0\n"}, "human"))
    result = await b.commit_files({"apps/redis/values.yaml": "image:\n  tag: 1.1.0\n"},
                                  MESSAGE)
    assert result.created
    assert len(repo.writes) == 2  # the stale write was refused, then redone on the new head
    assert repo.commits[repo.head].parents == [repo.commits[repo.head].parents[0]]
    assert repo.commits[repo.commits[repo.head].parents[0]].message == "human"


async def test_conflicting_edit_is_refused(forge: Setup) -> None:
    b, repo = forge.backend, forge.repo
    parent = repo.head
    repo.commit({"apps/redis/release.yaml": RELEASE.replace("18.1.0", "19.0.0")}, "human")
    with pytest.raises(GitConflictError, match=r"apps/redis/release\.yaml was changed"):
        await b.commit_files({"apps/redis/release.yaml": UPGRADE}, MESSAGE, parent)
    assert repo.commits[repo.head].message == "human"


async def test_revert_restores_files_and_is_idempotent(forge: Setup) -> None:
    b, repo = forge.backend, forge.repo
    upgrade = await b.commit_files({"apps/redis/release.yaml": UPGRADE,
                                    "apps/redis/extra.yaml": "x: 1\n"}, MESSAGE)
    repo.commit({"README.md": "# later\n"}, "human")
    reverted = await b.revert(upgrade.sha, "Revert redis 18.2.0\n\nManaged-By: fluxup\n")
    assert reverted.created
    tree = repo.commits[repo.head].tree
    assert tree["apps/redis/release.yaml"] == RELEASE
    assert "apps/redis/extra.yaml" not in tree
    assert tree["README.md"] == "# later\n"
    assert repo.commits[repo.head].message.startswith("Revert redis 18.2.0")
    assert not (await b.revert(upgrade.sha, "again")).created


async def test_revert_conflict(forge: Setup) -> None:
    b, repo = forge.backend, forge.repo
    upgrade = await b.commit_files({"apps/redis/release.yaml": UPGRADE}, MESSAGE)
    repo.commit({"apps/redis/release.yaml": UPGRADE + "# tuned\n"}, "human")
    with pytest.raises(GitConflictError, match="commit the previous version forward"):
        await b.revert(upgrade.sha, "revert")


async def test_protected_branch_is_a_permanent_refusal(forge: Setup) -> None:
    forge.repo.protected = True
    head = forge.repo.head
    with pytest.raises(PushRejectedError):
        await forge.backend.commit_files({"apps/redis/release.yaml": UPGRADE}, MESSAGE)
    assert forge.repo.head == head
    assert len(forge.repo.writes) == 1  # not retried


async def test_bad_token_never_shows(forge: Setup, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-" + TOKEN
    async with serve(GitHub(forge.repo) if forge.kind == "github" else GitLab(forge.repo)) as u:
        backend: GitBackend = (
            GitHubBackend(owner="home", repo="cluster", branch="main", token=wrong, base_url=u)
            if forge.kind == "github"
            else GitLabBackend(project="home/cluster", branch="main", token=wrong, base_url=u))
        with pytest.raises(PushRejectedError) as err:
            await backend.commit_files({"apps/redis/release.yaml": UPGRADE}, MESSAGE)
        await backend.aclose()
    assert "401" in str(err.value)
    assert wrong not in str(err.value)
    assert wrong not in caplog.text


def test_configuration_errors() -> None:
    with pytest.raises(ConfigError, match="token"):
        GitHubBackend(owner="a", repo="b", branch="main", token="")
    with pytest.raises(ConfigError, match="push_attempts"):
        GitLabBackend(project="a/b", branch="main", token="t", push_attempts=0)
