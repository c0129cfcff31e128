"""GitCliBackend against real git: bare repositories over file:// and, through the
sandbox's Git server (smart HTTP, Basic auth), over http://.

A second clone plays the human (or CI) pushing to the same branch; a git wrapper makes
that push land between FluxUp's fetch and its push, to force a genuine lost race.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fluxup.adapters.git import GitBackend, GitCliBackend, HttpCredentials, SshCredentials
from fluxup.errors import (
    ConfigError,
    GitAuthError,
    GitConflictError,
    GitNotFoundError,
    PushRejectedError,
)
from fluxup.sandbox.gitserver import start_git_server
from fluxup.sandbox.processes import stop_process

RELEASE = """\
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: redis
  namespace: apps
spec:
  interval: 10m
  chart:
    spec:
      chart: redis
      version: "18.1.0"
  values:
    architecture: standalone
    auth:
      enabled: true
    metrics:
      enabled: false
    replica:
      replicaCount: 1
"""
DEPLOY = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n"
SEED = {
    "README.md": "# cluster\n",
    "apps/redis/release.yaml": RELEASE,
    "apps/web/deploy.yaml": DEPLOY,
    "windows/crlf.yaml": "a: 1\r\nb: 2\r\n",
}
UPGRADE = RELEASE.replace('version: "18.1.0"', 'version: "18.2.0"')
MESSAGE = (
    "chore(deps): update redis to 18.2.0\n\nsnapshots...\n\n"
    "Managed-By: fluxup\nPrevious-Version: 18.1.0\nUpgrade-Request: apps/up-1\n"
)


def git_env() -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.devnull,
        "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": "Human",
        "GIT_AUTHOR_EMAIL": "human@example.invalid",
        "GIT_COMMITTER_NAME": "Human",
        "GIT_COMMITTER_EMAIL": "human@example.invalid",
    }


def init_bare(path: Path) -> Path:
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True)
    return path


def git(*args: str, cwd: Path, config: tuple[str, ...] = ()) -> str:
    proc = subprocess.run(
        ["git", *config, *args], cwd=cwd, env=git_env(), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@dataclass
class Remote:
    """A remote repository plus a second clone to push to it like a human would."""

    url: str
    workdir: Path
    credentials: HttpCredentials | None = None
    config: tuple[str, ...] = ()  # -c options the human's git needs (auth header)
    bare: Path | None = None
    human: Path = field(init=False)

    def __post_init__(self) -> None:
        self.human = self.workdir / "human"

    def backend(self, name: str = "fluxup", **kwargs: object) -> GitCliBackend:
        options: dict[str, object] = {"credentials": self.credentials, **kwargs}
        return GitCliBackend(
            url=self.url,
            branch="main",
            workdir=self.workdir / name,
            **options,  # type: ignore[arg-type]
        )

    def seed(self, files: dict[str, str]) -> str:
        self.human.mkdir()
        git("init", "-q", "-b", "main", cwd=self.human)
        git("remote", "add", "origin", self.url, cwd=self.human)
        for path, text in files.items():
            target = self.human / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(text.encode())
        git("add", "-A", cwd=self.human)
        git("commit", "-q", "-m", "initial", cwd=self.human)
        git("push", "-q", "origin", "main", cwd=self.human, config=self.config)
        return self.rev("HEAD")

    def push_change(self, path: str, text: str, message: str = "human change") -> str:
        git("pull", "-q", "--ff-only", "origin", "main", cwd=self.human, config=self.config)
        (self.human / path).write_bytes(text.encode())
        git("commit", "-q", "-am", message, cwd=self.human)
        git("push", "-q", "origin", "main", cwd=self.human, config=self.config)
        return self.rev("HEAD")

    def pull(self) -> None:
        git("pull", "-q", "--ff-only", "origin", "main", cwd=self.human, config=self.config)

    def rev(self, ref: str) -> str:
        return git("rev-parse", ref, cwd=self.human).strip()

    def read(self, ref: str, path: str) -> bytes:
        proc = subprocess.run(
            ["git", "show", f"{ref}:{path}"], cwd=self.human, env=git_env(), capture_output=True
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def remote_head(self) -> str:
        out = git("ls-remote", "origin", "refs/heads/main", cwd=self.human, config=self.config)
        return out.split()[0]


@dataclass(frozen=True)
class Server:
    port: int
    username: str
    password: str


@pytest.fixture(scope="module")
def git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("gitserver")
    token = secrets.token_hex(6)
    pid, port, credentials = start_git_server(base / "srv", token, base / "logs")
    yield Server(port, credentials.username, credentials.password)
    stop_process(pid, token)


@pytest.fixture(params=["file", "http"])
def remote(request: pytest.FixtureRequest, tmp_path: Path) -> Remote:
    if request.param == "file":
        bare = init_bare(tmp_path / "remote.git")
        return Remote(url=bare.as_uri(), workdir=tmp_path, bare=bare)
    server: Server = request.getfixturevalue("git_server")
    basic = base64.b64encode(f"{server.username}:{server.password}".encode()).decode()
    return Remote(
        url=f"http://127.0.0.1:{server.port}/test/{uuid.uuid4().hex}.git",
        workdir=tmp_path,
        credentials=HttpCredentials(server.username, server.password),
        config=("-c", f"http.extraHeader=Authorization: Basic {basic}"),
    )


async def test_backend_satisfies_the_protocol(remote: Remote) -> None:
    assert isinstance(remote.backend(), GitBackend)


async def test_read_list_and_head(remote: Remote) -> None:
    first = remote.seed(SEED)
    backend = remote.backend()
    assert await backend.head() == first
    content = await backend.read_file("apps/redis/release.yaml")
    assert (content.text, content.commit) == (RELEASE, first)
    assert content.sha == git("rev-parse", "HEAD:apps/redis/release.yaml", cwd=remote.human).strip()
    assert (await backend.read_file("windows/crlf.yaml")).text == "a: 1\r\nb: 2\r\n"
    assert await backend.list_files("apps/") == ["apps/redis/release.yaml", "apps/web/deploy.yaml"]
    assert len(await backend.list_files()) == len(SEED)

    second = remote.push_change("apps/web/deploy.yaml", DEPLOY + "spec: {}\n")
    assert (await backend.read_file("apps/web/deploy.yaml", ref=first)).text == DEPLOY
    assert (await backend.read_file("apps/web/deploy.yaml")).commit == second
    assert (await backend.read_file("apps/web/deploy.yaml", ref="main")).commit == second
    with pytest.raises(GitNotFoundError, match=r"apps/none\.yaml"):
        await backend.read_file("apps/none.yaml")
    with pytest.raises(GitNotFoundError):
        await backend.read_file("apps")  # a directory, not a file
    with pytest.raises(GitNotFoundError):
        await backend.read_file("README.md", ref="f" * 40)
    with pytest.raises(ConfigError):
        await backend.read_file("../etc/passwd")


async def test_commit_two_files_atomically_then_idempotently(remote: Remote) -> None:
    first = remote.seed(SEED)
    backend = remote.backend()
    read = await backend.read_file("apps/redis/release.yaml")
    changes = {
        "apps/redis/release.yaml": UPGRADE,
        "windows/crlf.yaml": "a: 1\r\nb: 3\r\n",
        "apps/redis/new.yaml": "kind: ConfigMap\n",
    }
    result = await backend.commit_files(changes, MESSAGE, expected_parent=read.commit)
    assert result.created
    assert await backend.head() == result.sha

    remote.pull()
    assert remote.rev("HEAD") == result.sha
    assert remote.rev("HEAD~1") == first  # one commit holds every file
    changed = git("show", "--name-only", "--format=", "HEAD", cwd=remote.human).split()
    assert sorted(changed) == sorted(changes)
    for path, text in changes.items():
        assert remote.read("HEAD", path) == text.encode()  # byte for byte, CRLF included
    assert git("log", "-1", "--format=%B", cwd=remote.human) == MESSAGE + "\n"
    assert git("log", "-1", "--format=%an <%ae>", cwd=remote.human) == "FluxUp <fluxup@localhost>\n"

    again = await backend.commit_files(changes, MESSAGE, expected_parent=read.commit)
    assert (again.sha, again.created) == (result.sha, False)
    assert await backend.find_commit("Upgrade-Request", "apps/up-1") == result.sha
    assert await backend.find_commit("upgrade-request", "apps/up-1") == result.sha
    assert await backend.find_commit("Upgrade-Request", "apps/up-2") is None
    assert await backend.find_commit("Upgrade-Request", "apps/up-1", limit=1) == result.sha
    remote.push_change("README.md", "# later\n")
    assert await backend.find_commit("Upgrade-Request", "apps/up-1", limit=1) is None
    assert await backend.find_commit("Upgrade-Request", "apps/up-1", limit=2) == result.sha
    with pytest.raises(ConfigError):
        await backend.find_commit("Bad Key,x", "v")


async def test_a_fresh_cache_finds_the_commit_after_a_crash(remote: Remote) -> None:
    remote.seed(SEED)
    result = await remote.backend("before-crash").commit_files(
        {"apps/redis/release.yaml": UPGRADE}, MESSAGE
    )
    restarted = remote.backend("after-crash")
    assert await restarted.find_commit("Upgrade-Request", "apps/up-1") == result.sha
    again = await restarted.commit_files({"apps/redis/release.yaml": UPGRADE}, MESSAGE)
    assert (again.sha, again.created) == (result.sha, False)


async def test_stale_parent_is_rebased_and_both_changes_land(
    remote: Remote, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fluxup")
    remote.seed(SEED)
    backend = remote.backend()
    read = await backend.read_file("apps/redis/release.yaml")
    # Meanwhile someone changes another file and a distant line of the same file.
    theirs = RELEASE.replace("replicaCount: 1", "replicaCount: 2")
    remote.push_change("apps/redis/release.yaml", theirs)
    human = remote.push_change("apps/web/deploy.yaml", DEPLOY + "spec: {}\n")

    result = await backend.commit_files(
        {"apps/redis/release.yaml": UPGRADE}, MESSAGE, expected_parent=read.commit
    )
    assert result.created
    remote.pull()
    assert remote.rev("HEAD") == result.sha
    assert remote.rev("HEAD~1") == human
    merged = remote.read("HEAD", "apps/redis/release.yaml").decode()
    assert 'version: "18.2.0"' in merged
    assert "replicaCount: 2" in merged
    assert remote.read("HEAD", "apps/web/deploy.yaml").decode().endswith("spec: {}\n")
    assert "lost a race" in caplog.text


async def test_push_racing_with_a_human_is_retried(remote: Remote, tmp_path: Path) -> None:
    """The human's push lands between FluxUp's fetch and its push (via a git wrapper)."""
    remote.seed(SEED)
    config = shlex.join(remote.config)
    marker = tmp_path / "raced"
    wrapper = tmp_path / "git-wrapper"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = push ] && [ ! -e {marker} ]; then\n'
        f"  touch {marker}\n"
        f"  cd {remote.human} || exit 99\n"
        f"  git {config} pull -q --ff-only origin main || exit 99\n"
        "  printf 'kind: Raced\\n' > apps/web/deploy.yaml\n"
        "  git commit -q -am raced || exit 99\n"
        f"  git {config} push -q origin main || exit 99\n"
        "  cd - >/dev/null\n"
        "fi\n"
        'exec git "$@"\n'
    )
    wrapper.chmod(0o755)
    backend = remote.backend(git=str(wrapper))
    result = await backend.commit_files({"apps/redis/release.yaml": UPGRADE}, MESSAGE)
    assert marker.exists()
    remote.pull()
    assert remote.rev("HEAD") == result.sha
    assert remote.read("HEAD", "apps/web/deploy.yaml") == b"kind: Raced\n"
    assert remote.read("HEAD", "apps/redis/release.yaml") == UPGRADE.encode()


async def test_conflicting_concurrent_edit_raises_and_pushes_nothing(remote: Remote) -> None:
    remote.seed(SEED)
    backend = remote.backend()
    read = await backend.read_file("apps/redis/release.yaml")
    human = remote.push_change("apps/redis/release.yaml", RELEASE.replace('"18.1.0"', '"18.3.0"'))
    with pytest.raises(GitConflictError, match="re-read"):
        await backend.commit_files(
            {"apps/redis/release.yaml": UPGRADE}, MESSAGE, expected_parent=read.commit
        )
    assert remote.remote_head() == human
    # The cache is usable afterwards: a fresh edit on the new head goes through.
    fresh = await backend.read_file("apps/redis/release.yaml")
    result = await backend.commit_files(
        {"apps/redis/release.yaml": UPGRADE}, MESSAGE, expected_parent=fresh.commit
    )
    assert result.created
    assert remote.remote_head() == result.sha


async def test_revert_clean_then_already_reverted(remote: Remote) -> None:
    remote.seed(SEED)
    backend = remote.backend()
    upgrade = await backend.commit_files(
        {"apps/redis/release.yaml": UPGRADE, "apps/redis/new.yaml": "kind: X\n"}, MESSAGE
    )
    later = remote.push_change("apps/web/deploy.yaml", DEPLOY + "spec: {}\n")
    reverted = await backend.revert(upgrade.sha, "revert(deps): roll redis back\n\nReverts: x\n")
    assert reverted.created
    remote.pull()
    assert remote.rev("HEAD") == reverted.sha
    assert remote.rev("HEAD~1") == later
    assert remote.read("HEAD", "apps/redis/release.yaml") == RELEASE.encode()
    assert "apps/redis/new.yaml" not in git(
        "ls-tree", "-r", "--name-only", "HEAD", cwd=remote.human
    )
    assert remote.read("HEAD", "apps/web/deploy.yaml").decode().endswith("spec: {}\n")
    assert await backend.find_commit("Reverts", "x") == reverted.sha

    again = await backend.revert(upgrade.sha, "revert again")
    assert (again.sha, again.created) == (reverted.sha, False)


async def test_revert_conflict_raises_and_pushes_nothing(remote: Remote) -> None:
    remote.seed(SEED)
    backend = remote.backend()
    upgrade = await backend.commit_files({"apps/redis/release.yaml": UPGRADE}, MESSAGE)
    human = remote.push_change("apps/redis/release.yaml", UPGRADE.replace('"18.2.0"', '"18.3.0"'))
    with pytest.raises(GitConflictError, match="forward"):
        await backend.revert(upgrade.sha, "revert")
    assert remote.remote_head() == human
    forward = await backend.commit_files({"apps/redis/release.yaml": RELEASE}, "forward")
    assert forward.created
    assert remote.remote_head() == forward.sha
    with pytest.raises(GitNotFoundError):
        await backend.revert("0" * 40, "revert")


async def test_diff_preview_changes_nothing(remote: Remote) -> None:
    first = remote.seed(SEED)
    backend = remote.backend()
    diff = await backend.diff_preview(
        {"apps/redis/release.yaml": UPGRADE, "apps/redis/new.yaml": "kind: X\n"}
    )
    assert "--- a/apps/redis/release.yaml\n+++ b/apps/redis/release.yaml\n" in diff
    assert '-      version: "18.1.0"\n+      version: "18.2.0"\n' in diff
    assert "+++ b/apps/redis/new.yaml\n@@ -0,0 +1 @@\n+kind: X\n" in diff
    assert await backend.head() == first
    assert remote.remote_head() == first


async def test_first_commit_creates_the_branch(tmp_path: Path) -> None:
    bare = init_bare(tmp_path / "empty.git")
    backend = GitCliBackend(url=bare.as_uri(), branch="main", workdir=tmp_path / "cache")
    assert await backend.list_files() == []
    assert await backend.find_commit("Managed-By", "fluxup") is None
    with pytest.raises(GitNotFoundError, match="branch main"):
        await backend.head()
    assert "+a: 1\n" in await backend.diff_preview({"a.yaml": "a: 1\n"})
    result = await backend.commit_files({"a.yaml": "a: 1\n"}, "initial\n\nManaged-By: fluxup\n")
    assert await backend.head() == result.sha
    assert await backend.find_commit("Managed-By", "fluxup") == result.sha


async def test_protected_branch_is_a_permanent_rejection(tmp_path: Path) -> None:
    bare = init_bare(tmp_path / "remote.git")
    remote = Remote(url=bare.as_uri(), workdir=tmp_path)
    remote.seed(SEED)
    human = remote.push_change("README.md", "# protected\n")
    hook = bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'main is protected' >&2\nexit 1\n")
    hook.chmod(0o755)
    with pytest.raises(PushRejectedError, match="pre-receive hook declined"):
        await remote.backend().commit_files({"apps/redis/release.yaml": UPGRADE}, MESSAGE)
    with pytest.raises(PushRejectedError):
        await remote.backend("other").revert(human, "revert")
    assert remote.remote_head() == human


async def test_wrong_credentials_never_leak(
    git_server: Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    basic = base64.b64encode(f"{git_server.username}:{git_server.password}".encode()).decode()
    remote = Remote(
        url=f"http://127.0.0.1:{git_server.port}/test/{uuid.uuid4().hex}.git",
        workdir=tmp_path,
        config=("-c", f"http.extraHeader=Authorization: Basic {basic}"),
    )
    remote.seed(SEED)
    wrong = "wrong-" + secrets.token_urlsafe(12)
    backend = remote.backend(credentials=HttpCredentials(git_server.username, wrong))
    with pytest.raises(PushRejectedError) as rejected:
        await backend.commit_files({"apps/redis/release.yaml": UPGRADE}, MESSAGE)
    with pytest.raises(GitAuthError) as refused:
        await backend.read_file("README.md")
    wrong_basic = base64.b64encode(f"{git_server.username}:{wrong}".encode()).decode()
    for text in (str(rejected.value), str(refused.value), caplog.text, repr(backend)):
        for secret in (wrong, wrong_basic, git_server.password, basic):
            assert secret not in text
    assert "credentials" in str(rejected.value)
    config = (tmp_path / "fluxup" / ".git" / "config").read_text()
    assert wrong not in config
    assert wrong_basic not in config
    assert wrong not in repr(HttpCredentials("u", wrong))


def test_credentials_in_the_url_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        GitCliBackend(
            url="https://user:hunter2@git.example/repo.git", branch="main", workdir=tmp_path
        )
    assert "hunter2" not in str(caught.value)
    with pytest.raises(ConfigError):
        GitCliBackend(url="https://git.example/r.git", branch="-x", workdir=tmp_path)


FAKE_SSH = """\
import os, stat, sys
args = sys.argv[1:]
key = args[args.index("-i") + 1]
mode = stat.S_IMODE(os.stat(key).st_mode)
with open(os.environ["FAKE_SSH_RECORD"], "a") as record:
    record.write(f"{key} {mode:o} {open(key).read().strip()!r} {' '.join(args[:-1])}\\n")
os.execvp("sh", ["sh", "-c", args[-1]])
"""


async def test_ssh_key_is_private_and_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bare = init_bare(tmp_path / "remote.git")
    Remote(url=bare.as_uri(), workdir=tmp_path).seed(SEED)
    record = tmp_path / "record"
    script = tmp_path / "fake_ssh.py"
    script.write_text(FAKE_SSH)
    fake_ssh = tmp_path / "fake-ssh"
    fake_ssh.write_text(
        f'#!/bin/sh\nFAKE_SSH_RECORD={record} exec {sys.executable} {script} "$@"\n'
    )
    fake_ssh.chmod(0o755)
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key\n-----END OPENSSH PRIVATE KEY-----"
    backend = GitCliBackend(
        url=f"ssh://git.example{bare}",
        branch="main",
        workdir=tmp_path / "cache",
        credentials=SshCredentials(key, known_hosts="git.example ssh-ed25519 AAAAC3Nza"),
        ssh=str(fake_ssh),
    )
    result = await backend.commit_files({"apps/redis/release.yaml": UPGRADE}, MESSAGE)
    assert result.created
    lines = record.read_text().splitlines()
    assert len(lines) >= 2  # fetch and push
    for line in lines:
        path, mode, rest = line.split(" ", 2)
        assert mode == "600"
        assert "not-a-real-key" in rest
        assert "StrictHostKeyChecking=yes" in rest
        assert not Path(path).parent.exists()  # removed after the command
    assert "not-a-real-key" not in repr(SshCredentials(key))
