"""A throw-away Gitea server, for testing FluxUp's Gitea Git backend against the real API.

Gitea is one of the sandbox's tools (:data:`fluxup.sandbox.components.TOOLS`), built from
its published Go module by ``fluxup sandbox build gitea`` (``make build`` does it). It is
not part of the sandbox cluster and needs no Kubernetes: :func:`start_gitea` brings one
up on its own in a directory and returns in a few seconds.

The server listens on a free loopback port with SQLite (the pure-Go driver) and
``INSTALL_LOCK`` set, so it never shows the installer; registration, SSH, mail, cron,
Actions and packages are off. Before the web server starts, Gitea's own CLI migrates the
database, creates an admin user and an access token for it (scope ``all``); the token is
used to set up repositories, users and branch protections through the REST API. Gitea
reads its templates and options from the module directory in the Go module cache (it is
built without ``bindata``), so nothing is copied.

The server runs as a sandbox process (:func:`fluxup.sandbox.processes.start_process`)
with its log in ``log_dir/gitea.log``; :meth:`GiteaServer.stop` ends it. Passwords and
tokens are never logged.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fluxup.errors import SandboxError
from fluxup.sandbox.components import component
from fluxup.sandbox.processes import free_port, is_ours, start_process, stop_process, wait_until

__all__ = ["ADMIN", "GiteaServer", "gitea_binary", "render_app_ini", "start_gitea"]

#: The admin user :func:`start_gitea` creates.
ADMIN = "sandbox-admin"


@dataclass(frozen=True)
class GiteaServer:
    """A running Gitea: its address, the admin's credentials, and how to stop it."""

    url: str
    dir: Path
    pid: int
    process_token: str = field(repr=False)
    admin_password: str = field(repr=False)
    admin_token: str = field(repr=False)
    admin: str = ADMIN

    @property
    def api(self) -> str:
        """Base address of the REST API (``.../api/v1``)."""
        return f"{self.url}/api/v1"

    def stop(self) -> bool:
        """Stop the server; True if it was still running."""
        return stop_process(self.pid, self.process_token)


def gitea_binary() -> Path:
    """The cached ``gitea`` binary; a clear error when it has not been built yet."""
    from fluxup.sandbox.gobuild import bin_dir

    path = bin_dir(component("gitea")) / "gitea"
    if not path.is_file():
        raise SandboxError(
            f"Gitea is not built ({path} is missing); run `make build` or "
            "`fluxup sandbox build gitea` (a cold build takes several minutes)"
        )
    return path


def _static_root() -> Path:
    """The Gitea module directory holding ``templates/`` and ``options/``."""
    from fluxup.sandbox.gobuild import module_dir

    comp = component("gitea")
    return module_dir(comp.source or comp.module, comp.version)


def render_app_ini(
    dir: Path, port: int, static_root: Path,
    settings: Mapping[str, Mapping[str, str]] | None = None,
) -> str:
    """The ``app.ini`` of a throw-away server in ``dir``; ``settings`` adds or overrides
    keys per section (``""`` is the top-level section)."""
    sections: dict[str, dict[str, str]] = {
        "": {"APP_NAME": "FluxUp sandbox Gitea", "RUN_MODE": "prod", "WORK_PATH": str(dir)},
        "server": {
            "PROTOCOL": "http", "HTTP_ADDR": "127.0.0.1", "HTTP_PORT": str(port),
            "DOMAIN": "127.0.0.1", "ROOT_URL": f"http://127.0.0.1:{port}/",
            "LOCAL_ROOT_URL": f"http://127.0.0.1:{port}/",
            "DISABLE_SSH": "true", "START_SSH_SERVER": "false", "OFFLINE_MODE": "true",
            "LFS_START_SERVER": "false", "APP_DATA_PATH": str(dir / "data"),
            "STATIC_ROOT_PATH": str(static_root), "GRACEFUL_HAMMER_TIME": "3s",
        },
        "database": {"DB_TYPE": "sqlite3", "PATH": str(dir / "data" / "gitea.db"),
                     "SQLITE_JOURNAL_MODE": "WAL"},
        "repository": {"ROOT": str(dir / "repositories"), "DEFAULT_BRANCH": "main"},
        "security": {"INSTALL_LOCK": "true"},
        "service": {"DISABLE_REGISTRATION": "true", "REQUIRE_SIGNIN_VIEW": "true",
                    "ENABLE_NOTIFY_MAIL": "false"},
        "oauth2": {"ENABLED": "false"},
        "mailer": {"ENABLED": "false"},
        "cron": {"ENABLED": "false"},
        "cron.update_checker": {"ENABLED": "false"},
        "actions": {"ENABLED": "false"},
        "packages": {"ENABLED": "false"},
        "indexer": {"ISSUE_INDEXER_TYPE": "db", "REPO_INDEXER_ENABLED": "false"},
        "queue": {"TYPE": "channel"},
        "session": {"PROVIDER": "memory"},
        "cache": {"ADAPTER": "memory"},
        "picture": {"DISABLE_GRAVATAR": "true"},
        "log": {"MODE": "console", "LEVEL": "Warn", "ROOT_PATH": str(dir / "log")},
    }
    for name, values in (settings or {}).items():
        sections.setdefault(name, {}).update(values)
    lines: list[str] = []
    for name, values in sections.items():
        if name:
            lines.append(f"\n[{name}]")
        lines += [f"{key} = {value}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def _env(dir: Path) -> dict[str, str]:
    env = {"GITEA_WORK_DIR": str(dir), "GITEA_CUSTOM": str(dir / "custom"),
           "HOME": str(dir / "home")}
    if os.geteuid() == 0:
        # Gitea refuses to run as root unless told to; build machines and CI run as root
        env["GITEA_I_AM_BEING_UNSAFE_RUNNING_AS_ROOT"] = "true"
    return env


def _cli(binary: Path, dir: Path, *args: str) -> str:
    """Run a ``gitea`` CLI command against the server's configuration; its stdout."""
    env = dict(os.environ)
    env.update(_env(dir))
    proc = subprocess.run([str(binary), *args], env=env, cwd=dir, capture_output=True,
                          text=True, timeout=180, check=False)
    if proc.returncode != 0:
        raise SandboxError(f"`gitea {args[0]} {args[1] if len(args) > 1 else ''}` failed "
                           f"(exit {proc.returncode}):\n{(proc.stderr or proc.stdout)[-2000:]}")
    return proc.stdout


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/healthz", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start_gitea(
    dir: Path, token: str, log_dir: Path,
    settings: Mapping[str, Mapping[str, str]] | None = None,
) -> GiteaServer:
    """Start a fresh Gitea with its data in ``dir`` (which must not hold one already).

    ``token`` is the sandbox process token (see :mod:`fluxup.sandbox.processes`);
    ``settings`` adds ``app.ini`` keys (see :func:`render_app_ini`).
    """
    binary = gitea_binary()
    dir = dir.resolve()
    conf = dir / "custom" / "conf" / "app.ini"
    if conf.exists():
        raise SandboxError(f"{dir} already holds a Gitea; start_gitea wants a fresh directory")
    for sub in ("data", "log", "home", "repositories"):
        (dir / sub).mkdir(parents=True, exist_ok=True)
    conf.parent.mkdir(parents=True)
    port = free_port()
    conf.write_text(render_app_ini(dir, port, _static_root(), settings))
    _cli(binary, dir, "migrate")
    password = secrets.token_urlsafe(18)
    _cli(binary, dir, "admin", "user", "create", "--username", ADMIN, "--password", password,
         "--email", f"{ADMIN}@example.invalid", "--admin", "--must-change-password=false")
    printed = _cli(binary, dir, "admin", "user", "generate-access-token", "--username",
                   ADMIN, "--token-name", "sandbox", "--scopes", "all", "--raw").split()
    admin_token = printed[-1] if printed else ""  # --raw prints the token alone, last
    if not re.fullmatch(r"[0-9a-f]{40}", admin_token):
        raise SandboxError("gitea admin user generate-access-token printed no token")
    url = f"http://127.0.0.1:{port}"
    pid = start_process("gitea", [str(binary), "web"], log_dir, token, env=_env(dir), cwd=dir)
    server = GiteaServer(url=url, dir=dir, pid=pid, process_token=token,
                         admin_password=password, admin_token=admin_token)
    try:
        wait_until("gitea", lambda: _healthy(url), 60, log_dir / "gitea.log",
                   lambda: is_ours(pid, token))
    except SandboxError:
        server.stop()
        raise
    return server
