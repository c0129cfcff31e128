"""The sandbox Git server: real git clients over smart HTTP, Basic auth, races, gzip."""

from __future__ import annotations

import base64
import gzip
import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from fluxup.sandbox.gitserver import (
    GitCredentials,
    is_authorized,
    parse_cgi_headers,
    start_git_server,
)
from fluxup.sandbox.processes import is_ours, stop_process


@dataclass(frozen=True)
class Server:
    port: int
    credentials: GitCredentials
    root: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, repo: str, password: str | None = None) -> str:
        pw = self.credentials.password if password is None else password
        return f"http://{self.credentials.username}:{pw}@127.0.0.1:{self.port}/{repo}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("gitserver")
    token = secrets.token_hex(6)
    pid, port, credentials = start_git_server(base / "srv", token, base / "logs")
    assert is_ours(pid, token)
    yield Server(port, credentials, base / "srv" / "repos")
    assert stop_process(pid, token)


def git(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, GIT_TERMINAL_PROMPT="0",
               GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.invalid",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.invalid")
    proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def commit(workdir: Path, name: str, text: str) -> str:
    (workdir / name).write_text(text)
    git("add", name, cwd=workdir)
    git("commit", "-q", "-m", f"write {name}", cwd=workdir)
    return git("rev-parse", "HEAD", cwd=workdir).stdout.strip()


def new_repo(server: Server, tmp_path: Path, name: str) -> tuple[str, Path, str]:
    """Push a first commit to a new repo ``name``; return (url, workdir, sha)."""
    work = tmp_path / f"{name}-seed"
    work.mkdir()
    git("init", "-q", "--initial-branch=main", cwd=work)
    sha = commit(work, "README", "hello\n")
    url = server.url(f"{name}.git")
    git("push", "-q", url, "main", cwd=work)
    return url, work, sha


def test_push_creates_repo_then_clone_and_fetch_see_commits(
    server: Server, tmp_path: Path
) -> None:
    url, work, first = new_repo(server, tmp_path, "roundtrip")
    assert (server.root / "roundtrip.git" / "HEAD").read_text().strip() == "ref: refs/heads/main"

    git("clone", "-q", url, "clone", cwd=tmp_path)
    clone = tmp_path / "clone"
    assert (clone / "README").read_text() == "hello\n"
    assert git("rev-parse", "HEAD", cwd=clone).stdout.strip() == first

    second = commit(work, "more", "data\n")
    git("push", "-q", url, "main", cwd=work)
    for version in ("0", "2"):  # both wire protocols go through the backend
        git("-c", f"protocol.version={version}", "fetch", "-q", "origin", cwd=clone)
        assert git("rev-parse", "origin/main", cwd=clone).stdout.strip() == second


def test_large_chunked_push_round_trips(server: Server, tmp_path: Path) -> None:
    url, work, _ = new_repo(server, tmp_path, "large")
    blob = secrets.token_bytes(3 * 1024 * 1024)  # over http.postBuffer: sent chunked
    (work / "blob.bin").write_bytes(blob)
    git("add", "blob.bin", cwd=work)
    git("commit", "-q", "-m", "large", cwd=work)
    git("-c", "http.postBuffer=65536", "push", "-q", url, "main", cwd=work)
    git("clone", "-q", url, "large-clone", cwd=tmp_path)
    assert (tmp_path / "large-clone" / "blob.bin").read_bytes() == blob


@pytest.mark.parametrize("service", ["git-upload-pack", "git-receive-pack"])
def test_anonymous_requests_are_refused(server: Server, tmp_path: Path, service: str) -> None:
    new_repo(server, tmp_path, f"anon-{service}")
    resp = httpx.get(f"{server.base}/anon-{service}.git/info/refs",
                     params={"service": service}, trust_env=False)
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Basic ")


def test_wrong_password_is_401_and_git_fails(server: Server, tmp_path: Path) -> None:
    new_repo(server, tmp_path, "guarded")
    resp = httpx.get(f"{server.base}/guarded.git/info/refs",
                     params={"service": "git-upload-pack"},
                     auth=(server.credentials.username, "wrong"), trust_env=False)
    assert resp.status_code == 401

    proc = git("clone", server.url("guarded.git", password="wrong"), "x", cwd=tmp_path,
               check=False)
    assert proc.returncode != 0
    assert "Authentication failed" in proc.stderr
    work = tmp_path / "guarded-seed"
    commit(work, "evil", "x\n")
    push = git("push", server.url("guarded.git", password="wrong"), "main", cwd=work,
               check=False)
    assert push.returncode != 0
    assert "Authentication failed" in push.stderr


def test_fetching_a_missing_repo_is_404_and_creates_nothing(server: Server) -> None:
    resp = httpx.get(f"{server.base}/missing.git/info/refs",
                     params={"service": "git-upload-pack"},
                     auth=(server.credentials.username, server.credentials.password),
                     trust_env=False)
    assert resp.status_code == 404
    assert not (server.root / "missing.git").exists()


def test_concurrent_pushes_of_one_branch_let_exactly_one_win(
    server: Server, tmp_path: Path
) -> None:
    url, _, base_sha = new_repo(server, tmp_path, "race")
    clones, shas = [], []
    for i in range(2):
        git("clone", "-q", url, f"c{i}", cwd=tmp_path)
        clones.append(tmp_path / f"c{i}")
        shas.append(commit(clones[-1], f"file{i}", f"{i}\n"))

    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, GIT_TERMINAL_PROMPT="0")
    procs = [subprocess.Popen(["git", "push", "origin", "main"], cwd=c, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for c in clones]
    results = [(p.wait(timeout=60), p.communicate()[1]) for p in procs]

    winners = [i for i, (code, _) in enumerate(results) if code == 0]
    assert len(winners) == 1, results
    loser = 1 - winners[0]
    assert "rejected" in results[loser][1]
    remote = git("ls-remote", url, "refs/heads/main", cwd=tmp_path).stdout.split()[0]
    assert remote == shas[winners[0]] != base_sha

    # The loser's force push is refused too (non-fast-forward updates are denied) ...
    forced = git("push", "--force", "origin", "main", cwd=clones[loser], check=False)
    assert forced.returncode != 0
    assert "non-fast-forward" in forced.stderr
    # ... and after a rebase its change lands on top of the winner's.
    git("pull", "-q", "--rebase", "origin", "main", cwd=clones[loser])
    git("push", "-q", "origin", "main", cwd=clones[loser])
    log = git("log", "--format=%s", "origin/main", cwd=clones[loser])
    assert log.stdout.splitlines()[:2] == [f"write file{loser}", f"write file{winners[0]}"]


def _pkt(line: str) -> bytes:
    data = line.encode()
    return f"{len(data) + 4:04x}".encode() + data


def test_gzip_encoded_request_bodies_are_decoded(server: Server, tmp_path: Path) -> None:
    _, _, sha = new_repo(server, tmp_path, "gzipped")
    body = _pkt(f"want {sha} ofs-delta\n") + b"0000" + _pkt("done\n")
    resp = httpx.post(
        f"{server.base}/gzipped.git/git-upload-pack",
        content=gzip.compress(body),
        headers={"Content-Type": "application/x-git-upload-pack-request",
                 "Content-Encoding": "gzip"},
        auth=(server.credentials.username, server.credentials.password), trust_env=False,
    )
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/x-git-upload-pack-result"
    assert resp.content.startswith(b"0008NAK\n")
    assert b"PACK" in resp.content


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        (None, False),
        ("", False),
        ("Bearer abc", False),
        ("Basic !!!", False),
        ("Basic " + base64.b64encode(b"u:p").decode(), True),
        ("basic " + base64.b64encode(b"u:p").decode(), True),
        ("Basic " + base64.b64encode(b"u:p2").decode(), False),
        ("Basic " + base64.b64encode(b"v:p").decode(), False),
        ("Basic " + base64.b64encode(b"u:").decode(), False),
    ],
)
def test_is_authorized(header: str | None, ok: bool) -> None:
    assert is_authorized(header, GitCredentials("u", "p")) is ok


def test_credentials_repr_hides_password() -> None:
    creds = GitCredentials("u", "s3cret-value")
    assert "s3cret-value" not in repr(creds)
    assert creds.basic_auth_header() == "Basic " + base64.b64encode(b"u:s3cret-value").decode()


def test_parse_cgi_headers() -> None:
    status, reason, headers = parse_cgi_headers(
        b"Status: 404 Not Found\r\nContent-Type: text/plain\r\nExpires: Fri, 01 Jan 1980\r\n\r\n"
    )
    assert (status, reason) == (404, "Not Found")
    assert headers == [("Content-Type", "text/plain"), ("Expires", "Fri, 01 Jan 1980")]
    assert parse_cgi_headers(b"Content-Type: x\r\n\r\n") == (200, "OK", [("Content-Type", "x")])
