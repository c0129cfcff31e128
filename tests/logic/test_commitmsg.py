"""Tests for fluxup.logic.commitmsg: the exact upgrade message, trailer parsing (also
against git's own trailer parser), and refusal of values that could inject trailers."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fluxup.errors import InvalidValueError
from fluxup.logic.commitmsg import (
    SnapshotEntry,
    build_commit_message,
    build_rollback_message,
    parse_trailers,
)

SNAPSHOTS = [
    SnapshotEntry("apps", "fluxup-redis-18-2-0-data-redis-0", "data-redis-0"),
    SnapshotEntry("apps", "fluxup-redis-18-2-0-data-redis-1", "data-redis-1"),
]


def test_upgrade_message_exactly() -> None:
    message = build_commit_message(
        "redis", "18.2.0", "18.1.0", "apps/upgrade-redis-18-2-0", SNAPSHOTS
    )
    assert message == (
        "chore(deps): update redis to 18.2.0\n"
        "\n"
        "Before Flux applies this version, FluxUp snapshots these volumes and holds the\n"
        "release until the snapshots are ReadyToUse; a rollback restores from them:\n"
        "- apps/fluxup-redis-18-2-0-data-redis-0 (PVC data-redis-0)\n"
        "- apps/fluxup-redis-18-2-0-data-redis-1 (PVC data-redis-1)\n"
        "\n"
        "Managed-By: fluxup\n"
        "Previous-Version: 18.1.0\n"
        "Upgrade-Request: apps/upgrade-redis-18-2-0\n"
    )


def test_upgrade_message_without_volumes_and_with_plain_strings() -> None:
    empty = build_commit_message("web", "1.1.0", "1.0.0", "shop/up", [])
    assert "No volumes to snapshot" in empty
    listed = build_commit_message("web", "1.1.0", "1.0.0", "shop/up", ["shop/snap (PVC data)"])
    assert "\n- shop/snap (PVC data)\n" in listed


def test_trailers_round_trip() -> None:
    message = build_commit_message("redis", "18.2.0", "18.1.0", "apps/up", SNAPSHOTS)
    assert parse_trailers(message) == {
        "Managed-By": "fluxup",
        "Previous-Version": "18.1.0",
        "Upgrade-Request": "apps/up",
    }


def test_rollback_message_trailers() -> None:
    message = build_rollback_message("redis", "18.1.0", "18.2.0", "apps/rb-1", "a" * 40)
    assert message.startswith("revert(deps): roll redis back to 18.1.0\n\n")
    assert f"This reverts commit {'a' * 40}." in message
    assert parse_trailers(message) == {
        "Managed-By": "fluxup",
        "Previous-Version": "18.2.0",
        "Rollback-Request": "apps/rb-1",
        "Reverts": "a" * 40,
    }


def test_forward_rollback_message_has_no_reverts_trailer() -> None:
    message = build_rollback_message("redis", "18.1.0", "18.2.0", "apps/rb-1", None)
    assert message.startswith("revert(deps): roll redis back to 18.1.0\n\n")
    assert "This commit sets 18.1.0 again." in message
    assert parse_trailers(message) == {
        "Managed-By": "fluxup",
        "Previous-Version": "18.2.0",
        "Rollback-Request": "apps/rb-1",
    }


@pytest.mark.parametrize(
    ("message", "trailers"),
    [
        ("subject only", {}),
        ("subject\n\nbody line\n", {}),
        ("subject\n\nKey: value\n", {"Key": "value"}),
        ("Key: value\n", {}),  # the subject is never a trailer block
        ("s\n\nbody\n\nA: 1\nnot a trailer\n", {}),
        ("s\n\nbody\n\nA: 1\nB:2\n\n\n", {"A": "1", "B": "2"}),
        ("s\r\n\r\nA: 1\r\nB: 2\r\n", {"A": "1", "B": "2"}),
        ("s\n\nA: first\n  continued\nB: 2\n", {"A": "first continued", "B": "2"}),
        ("s\n\nA: first\nA: second\n  more\n", {"A": "first"}),
        ("s\n\nSigned-off-by: A <a@b>\n", {"Signed-off-by": "A <a@b>"}),
    ],
)
def test_parse_trailers(message: str, trailers: dict[str, str]) -> None:
    assert parse_trailers(message) == trailers


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("version", "1.2.3\nUpgrade-Request: evil/x"),
        ("version", ""),
        ("version", " 1.2.3"),
        ("app", "a\rb"),
        ("previous", "1.0.0\n"),
        ("request", "no-slash"),
        ("request", "a/b/c"),
        ("request", "/name"),
    ],
)
def test_values_that_could_inject_trailers_are_refused(field: str, value: str) -> None:
    arguments = {"app": "app", "version": "1.0.1", "previous": "1.0.0", "request": "ns/up"}
    arguments[field] = value
    with pytest.raises(InvalidValueError):
        build_commit_message(
            arguments["app"], arguments["version"], arguments["previous"], arguments["request"], []
        )


def test_snapshot_lines_cannot_inject_trailers() -> None:
    with pytest.raises(InvalidValueError):
        build_commit_message("a", "1.0.1", "1.0.0", "ns/up", ["x\n\nUpgrade-Request: ns/other"])


VALUE = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,30}", fullmatch=True)
NAME = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)


@settings(deadline=None, max_examples=60)
@given(app=NAME, version=VALUE, previous=VALUE, namespace=NAME, name=NAME)
def test_trailers_always_parse_back(
    app: str, version: str, previous: str, namespace: str, name: str
) -> None:
    message = build_commit_message(app, version, previous, f"{namespace}/{name}", SNAPSHOTS)
    assert parse_trailers(message) == {
        "Managed-By": "fluxup",
        "Previous-Version": previous,
        "Upgrade-Request": f"{namespace}/{name}",
    }


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_reads_the_same_trailers() -> None:
    message = build_commit_message("redis", "18.2.0", "18.1.0", "apps/up", SNAPSHOTS)
    parsed = subprocess.run(
        ["git", "interpret-trailers", "--parse"],
        input=message,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    expected = parse_trailers(message)
    assert parsed == "".join(f"{key}: {value}\n" for key, value in expected.items())
