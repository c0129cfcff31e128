"""GiteaBackend in the two cases a real Gitea server cannot produce.

The backend is tested against a real Gitea (built from its published Go module by
``make build``) in ``test_gitea_real.py``: reads, paging, atomic multi-file commits, real
lost races, conflicts, protected branches, refused tokens and reverts. What remains here
needs no server: a transport failure whose text carries the token (no real connection
error does, so only a mock transport can show that it is redacted), and the refusal to
build a backend without a token.
"""

from __future__ import annotations

import httpx
import pytest

from fluxup.adapters.git import GiteaBackend
from fluxup.errors import ConfigError, GitError

TOKEN = "gitea-token-" + "s3cr3t" * 4


async def test_transport_errors_become_git_errors_without_the_token() -> None:
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"connection refused ({request.headers['Authorization']})")

    backend = GiteaBackend(
        base_url="https://gitea.example",
        owner="home",
        repo="cluster",
        branch="main",
        token=TOKEN,
        transport=httpx.MockTransport(unreachable),
    )
    with pytest.raises(GitError) as caught:
        await backend.head()
    assert "connection refused" in str(caught.value)
    assert TOKEN not in str(caught.value)
    await backend.aclose()


def test_a_token_is_required() -> None:
    with pytest.raises(ConfigError):
        GiteaBackend(base_url="https://g", owner="o", repo="r", branch="main", token="")
