"""The image's root filesystem, built the way the Dockerfile builds it (no Docker engine
here: fluxup/sandbox/imagefs.py runs the same steps into a staging directory), runs
FluxUp's entry points read-only and as uid 65532, like the shipped Deployments.

Slow (pip installs every pinned dependency; Node and Renovate come from the npm
registry, cached): marked ``full`` so it runs in the full suite only.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from certs.files import CertFiles
from fluxup.sandbox.imagefs import StagedImage, stage_image
from fluxup.sandbox.processes import free_port

pytestmark = pytest.mark.full

UID = 65532


@pytest.fixture(scope="module")
def image() -> Iterator[StagedImage]:
    base = Path(tempfile.mkdtemp(prefix="fluxup-image-", dir="/tmp"))
    base.chmod(0o755)
    try:
        yield stage_image(base / "rootfs", out=io.StringIO())
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def scratch(image: StagedImage) -> Iterator[Path]:
    """The pod's writable /tmp (an emptyDir), owned by the container's user."""
    path = Path(tempfile.mkdtemp(prefix="fluxup-tmp-", dir="/tmp"))
    os.chown(path, UID, UID)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def run_in_image(image: StagedImage, scratch: Path, *argv: str,
                 timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``argv`` with the staged root mounted read-only, as uid/gid 65532, the image's ENV."""
    env = " ".join(f"{k}={v}" for k, v in image.env(scratch).items())
    root = str(image.root)
    script = (f"mount --bind {root} {root} && mount -o remount,ro,bind {root} {root} && "
              f"exec setpriv --reuid {UID} --regid {UID} --clear-groups env -i {env} \"$@\"")
    return subprocess.run(["unshare", "--mount", "sh", "-c", script, "sh", *argv],
                          capture_output=True, text=True, timeout=timeout)


def test_tools_are_the_pinned_ones(image: StagedImage, scratch: Path) -> None:
    node = run_in_image(image, scratch, "node", "--version")
    assert node.returncode == 0, node.stderr
    assert node.stdout.startswith("v24.")
    renovate = run_in_image(image, scratch, "renovate", "--version", timeout=300)
    assert renovate.returncode == 0, renovate.stderr
    assert renovate.stdout.strip().startswith("44.")
    git = run_in_image(image, scratch, "fluxup", "--help")
    assert git.returncode == 0, git.stderr
    for command in ("operator", "webhook", "certs"):
        assert command in git.stdout


def test_root_filesystem_is_really_read_only(image: StagedImage, scratch: Path) -> None:
    target = image.venv / "written-at-runtime"
    proc = run_in_image(image, scratch, "sh", "-c", f"echo x > {target}")
    assert proc.returncode != 0
    assert "Read-only file system" in proc.stderr
    assert not target.exists()
    assert run_in_image(image, scratch, "id", "-u").stdout.strip() == str(UID)


def test_certs_and_webhook_entry_points_serve(image: StagedImage, scratch: Path) -> None:
    certs = scratch / "certs"
    made = run_in_image(image, scratch, "fluxup", "certs", "write", "--dir", str(certs),
                        "--hosts", "127.0.0.1", "localhost")
    assert made.returncode == 0, made.stderr
    files = CertFiles(certs)
    cert, key = files.cert, files.key
    assert cert.exists()
    assert key.exists()
    port = free_port()
    env = " ".join(f"{k}={v}" for k, v in image.env(scratch).items())
    root = str(image.root)
    script = (f"mount --bind {root} {root} && mount -o remount,ro,bind {root} {root} && "
              f"exec setpriv --reuid {UID} --regid {UID} --clear-groups env -i {env} "
              "FLUXUP_OPERATOR_USERNAME=system:serviceaccount:x:fluxup-operator "
              f"fluxup webhook --host=127.0.0.1 --port={port} --cert-file={cert} "
              f"--key-file={key}")
    server = subprocess.Popen(["unshare", "--mount", "sh", "-c", script],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        deadline = time.monotonic() + 60
        answer = b""
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as raw, \
                        context.wrap_socket(raw) as tls:
                    tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    answer = tls.recv(4096)
                    break
            except OSError:
                time.sleep(0.3)
        assert answer.startswith(b"HTTP/1.1 200"), (answer, server.poll())
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert "Traceback" not in output, output
