"""The sandbox's Git server: smart HTTP with Basic authentication, backed by git itself.

An aiohttp front end that checks HTTP Basic credentials on every request (fetch and push
alike; nothing is anonymous) and hands the request to Debian git's ``git http-backend``
CGI, streaming the request body in and the response body out. Bare repositories live
under one root directory; pushing to a repository that does not exist yet creates it
(push-to-create, as forges do), with ``main`` as its default branch and non-fast-forward
updates refused, like a protected branch.

Clients: the real ``git`` CLI (FluxUp's git backend, :mod:`fluxup.sandbox.seed`, tests)
and Flux's source-controller (go-git) with the credentials from a Secret.

Runs as its own process (``python -m fluxup.sandbox.gitserver --root DIR --port P --user U
--password-file F``); :func:`start_git_server` starts it for the sandbox. It must never
log or echo the password.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import hmac
import logging
import os
import re
import secrets
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from fluxup.errors import SandboxError
from fluxup.sandbox.processes import free_port, is_ours, start_process, wait_until

__all__ = [
    "GIT_HTTP_BACKEND",
    "GitCredentials",
    "GitServerConfig",
    "build_app",
    "build_cgi_env",
    "ensure_credentials",
    "is_authorized",
    "main",
    "parse_cgi_headers",
    "start_git_server",
]

GIT_HTTP_BACKEND = Path("/usr/lib/git-core/git-http-backend")
USERNAME = "fluxup"
REALM = "FluxUp sandbox Git"
CHUNK = 64 * 1024

#: Repository paths that may be created by a push: ``name.git`` or ``group/name.git``.
_REPO_PATH = re.compile(r"^/((?:[A-Za-z0-9][A-Za-z0-9._-]*/)*[A-Za-z0-9][A-Za-z0-9._-]*\.git)/")
#: Request headers never handed to the CGI: credentials, and the body framing that the
#: front end has already consumed (aiohttp undoes chunking and gzip/deflate encoding).
_NOT_FORWARDED = frozenset({
    "AUTHORIZATION", "PROXY_AUTHORIZATION", "CONTENT_TYPE", "CONTENT_LENGTH",
    "CONTENT_ENCODING", "TRANSFER_ENCODING", "CONNECTION",
})

log = logging.getLogger("fluxup.sandbox.gitserver")


@dataclass(frozen=True)
class GitCredentials:
    """A username and password for HTTP Basic authentication (``repr`` hides the password)."""

    username: str
    password: str = field(repr=False)

    def basic_auth_header(self) -> str:
        """The value of an ``Authorization`` header carrying these credentials."""
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


@dataclass(frozen=True)
class GitServerConfig:
    """What one server process serves, and to whom."""

    root: Path
    credentials: GitCredentials
    backend: Path = GIT_HTTP_BACKEND


CONFIG = web.AppKey("config", GitServerConfig)


def is_authorized(header: str | None, credentials: GitCredentials) -> bool:
    """True if an ``Authorization`` header value carries exactly ``credentials``."""
    if not header:
        return False
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        given = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    expected = f"{credentials.username}:{credentials.password}".encode()
    return hmac.compare_digest(given, expected)


def build_cgi_env(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    config: GitServerConfig,
    remote_addr: str,
    content_length: int | None,
    path_env: str,
) -> dict[str, str]:
    """The CGI/1.1 environment for one request to ``git http-backend``.

    ``content_length`` is the length of the body the CGI will read, or None when it is
    unknown (chunked or decoded bodies); http-backend then reads until end of input.
    """
    env = {
        "PATH": path_env,
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_SOFTWARE": "fluxup-sandbox-git",
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "REMOTE_ADDR": remote_addr,
        "REMOTE_USER": config.credentials.username,  # also enables receive-pack
        "AUTH_TYPE": "Basic",
        "GIT_PROJECT_ROOT": str(config.root),
        "GIT_HTTP_EXPORT_ALL": "1",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    content_type = headers.get("Content-Type")
    if content_type:
        env["CONTENT_TYPE"] = content_type
    if content_length is not None:
        env["CONTENT_LENGTH"] = str(content_length)
    for name, value in headers.items():
        key = name.upper().replace("-", "_")
        if key not in _NOT_FORWARDED:
            env["HTTP_" + key] = value  # e.g. HTTP_GIT_PROTOCOL for protocol v2
    return env


def parse_cgi_headers(raw: bytes) -> tuple[int, str, list[tuple[str, str]]]:
    """Split a CGI header block into (status, reason, headers)."""
    status, reason = 200, "OK"
    headers: list[tuple[str, str]] = []
    for line in raw.decode("latin-1").splitlines():
        if not line.strip():
            continue
        name, _, value = line.partition(":")
        name, value = name.strip(), value.strip()
        if name.lower() == "status":
            code, _, text = value.partition(" ")
            status, reason = int(code), text or reason
        else:
            headers.append((name, value))
    return status, reason, headers


def _unauthorized() -> web.Response:
    return web.Response(
        status=401, text="authentication required\n",
        headers={"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'},
    )


async def _ensure_repository(config: GitServerConfig, request: web.Request) -> None:
    """Create the bare repository a push is about to go to (push-to-create)."""
    if request.query.get("service") != "git-receive-pack":
        return
    match = _REPO_PATH.match(request.path)
    if match is None or ".." in match.group(1):
        return
    repo = config.root / match.group(1)
    if (repo / "HEAD").exists():
        return
    for argv in (
        ["git", "init", "--quiet", "--bare", "--initial-branch=main", str(repo)],
        ["git", "--git-dir", str(repo), "config", "receive.denyNonFastForwards", "true"],
        ["git", "--git-dir", str(repo), "config", "receive.denyDeletes", "true"],
    ):
        proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.DEVNULL)
        if await proc.wait() != 0:
            raise web.HTTPInternalServerError(text=f"could not create {match.group(1)}\n")
    log.info("created repository %s", match.group(1))


async def _feed(request: web.Request, stdin: asyncio.StreamWriter) -> None:
    """Copy the (already decoded) request body into the CGI's standard input."""
    try:
        async for chunk in request.content.iter_chunked(CHUNK):
            stdin.write(chunk)
            await stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the backend stopped reading; its response says why
    finally:
        stdin.close()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            await stdin.wait_closed()


async def _handle(request: web.Request) -> web.StreamResponse:
    config = request.app[CONFIG]
    if not is_authorized(request.headers.get("Authorization"), config.credentials):
        return _unauthorized()
    await _ensure_repository(config, request)
    encoded = "Content-Encoding" in request.headers or "Transfer-Encoding" in request.headers
    env = build_cgi_env(
        request.method, request.path, request.query_string, request.headers, config,
        request.remote or "127.0.0.1", None if encoded else request.content_length,
        os.environ.get("PATH", "/usr/bin:/bin"),
    )
    proc = await asyncio.create_subprocess_exec(
        str(config.backend), env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    feeder = asyncio.create_task(_feed(request, proc.stdin))
    try:
        try:
            head = await proc.stdout.readuntil(b"\r\n\r\n")  # http-backend ends lines in CRLF
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            raise web.HTTPBadGateway(text="git http-backend sent no valid response\n") from None
        status, reason, headers = parse_cgi_headers(head)
        response = web.StreamResponse(status=status, reason=reason)
        for name, value in headers:
            response.headers.add(name, value)
        await response.prepare(request)
        while chunk := await proc.stdout.read(CHUNK):
            await response.write(chunk)
        await feeder
        await proc.wait()
        await response.write_eof()
        return response
    finally:
        if not feeder.done():
            feeder.cancel()
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


def build_app(config: GitServerConfig) -> web.Application:
    """The aiohttp application serving ``config.root`` to ``config.credentials``."""
    if not config.backend.exists():
        raise SandboxError(
            f"{config.backend} is missing; install Debian's git package (apt-get install git)"
        )
    # client_max_size only limits buffered reads (request.read()); bodies here are streamed.
    app = web.Application(client_max_size=1024**3)
    app[CONFIG] = config
    app.router.add_route("*", "/{tail:.*}", _handle)
    return app


def _read_password(path: Path) -> str:
    try:
        password = path.read_text().strip()
    except OSError as exc:
        raise SandboxError(f"cannot read the Git server password file {path}: {exc}") from None
    if not password:
        raise SandboxError(f"the Git server password file {path} is empty")
    return password


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m fluxup.sandbox.gitserver``."""
    parser = argparse.ArgumentParser(prog="python -m fluxup.sandbox.gitserver",
                                     description="Git smart-HTTP server with Basic auth")
    parser.add_argument("--root", type=Path, required=True, help="directory of bare repos")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--user", default=USERNAME)
    parser.add_argument("--password-file", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        credentials = GitCredentials(args.user, _read_password(args.password_file))
        args.root.mkdir(parents=True, exist_ok=True)
        app = build_app(GitServerConfig(args.root.resolve(), credentials))
    except SandboxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    log.info("serving %s on http://%s:%d", args.root, args.host, args.port)
    web.run_app(app, host=args.host, port=args.port, print=None,
                handler_cancellation=True)
    return 0


def _answers(port: int) -> bool:
    """True once something at ``port`` answers HTTP (an anonymous request gets 401)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://127.0.0.1:{port}/", timeout=2):
            return True
    except urllib.error.HTTPError as exc:
        return exc.code == 401
    except OSError:
        return False


def ensure_credentials(directory: Path) -> GitCredentials:
    """The server's credentials, generated once into ``directory/password`` (mode 0600)."""
    path = directory / "password"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(24) + "\n")
    return GitCredentials(USERNAME, _read_password(path))


def start_git_server(
    dir: Path, token: str, log_dir: Path, *, port: int | None = None
) -> tuple[int, int, GitCredentials]:
    """Start the Git server for ``dir`` (repos in ``dir/repos``); return (pid, port, creds).

    The password is generated once and kept in ``dir/password``, so a restart keeps the
    credentials; pass the previous ``port`` to keep the URLs too.
    """
    dir = dir.resolve()
    credentials = ensure_credentials(dir)
    (dir / "repos").mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    argv = [
        sys.executable, "-m", "fluxup.sandbox.gitserver", "--root", str(dir / "repos"),
        "--port", str(port), "--user", credentials.username,
        "--password-file", str(dir / "password"),
    ]
    log = log_dir / "git-server.log"
    pid = start_process("git-server", argv, log_dir, token)
    # Until its exec completes, /proc shows the launcher without our token: wait that out
    # first, so the liveness check below only fails for a process that really exited.
    wait_until("git server to start", lambda: is_ours(pid, token), 10, log)
    wait_until("git server", lambda: _answers(port), 30, log,
               lambda: is_ours(pid, token))
    return pid, port, credentials


if __name__ == "__main__":
    sys.exit(main())
