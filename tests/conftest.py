"""Session fixtures: one sandbox control plane per test session, a namespace per test.

The ``sandbox`` fixture starts a fresh sandbox in a temporary directory, or reuses one:
``FLUXUP_SANDBOX_DIR=DIR`` brings up (or reuses) the sandbox in DIR and leaves it
running; ``FLUXUP_KUBECONFIG=PATH`` uses an already running sandbox's kubeconfig. Any
kubeconfig that is not a sandbox's aborts the whole session before a test runs.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from fluxup.errors import SandboxError
from fluxup.sandbox import controlplane
from fluxup.sandbox.addons import apply_files
from fluxup.sandbox.controlplane import Sandbox
from fluxup.sandbox.fleet import Fleet
from fluxup.sandbox.guard import check_sandbox_kubeconfig
from fluxup.sandbox.stack import Stack, start_stack

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    given = os.environ.get("FLUXUP_KUBECONFIG")
    if given:
        try:
            check_sandbox_kubeconfig(Path(given))
        except SandboxError as exc:
            pytest.exit(f"kubeconfig guard: {exc}", returncode=3)
        sb = controlplane.load(Path(given).resolve().parent)
        owned = False
    else:
        directory = os.environ.get("FLUXUP_SANDBOX_DIR")
        owned = not directory
        path = Path(directory) if directory else tmp_path_factory.mktemp("sandbox")
        sb = controlplane.up(path, full=True)
    os.environ["KUBECONFIG"] = str(sb.kubeconfig)  # anything defaulting to KUBECONFIG hits us
    yield sb
    if owned:
        controlplane.down(sb.dir)


@pytest.fixture(scope="session")
def fluxup_crds(sandbox: Sandbox) -> list[Path]:
    files = sorted((REPO / "crds").glob("fluxup.dev_*.yaml"))
    apply_files(sandbox, files)
    sandbox.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
    return files


@pytest.fixture(scope="session")
def fleet(sandbox: Sandbox) -> Fleet:
    """The seeded GitOps repository Flux in the sandbox follows."""
    return Fleet.of(sandbox)


@pytest.fixture(scope="session")
def stack(sandbox: Sandbox, fluxup_crds: list[Path],
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """FluxUp's webhook and operator (under the shipped RBAC) running on the sandbox."""
    running = start_stack(sandbox, tmp_path_factory.mktemp("fluxup"),
                          label=f"fluxup.dev/e2e={secrets.token_hex(3)}")
    yield running
    running.stop()


@pytest.fixture
def namespace(sandbox: Sandbox, request: pytest.FixtureRequest) -> Iterator[str]:
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"t-{slug}-{secrets.token_hex(3)}"
    sandbox.kubectl("create", "namespace", name)
    yield name
    sandbox.kubectl("delete", "namespace", name, "--wait=false", check=False)
