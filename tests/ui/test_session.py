"""Sealed session cookies: tampering, expiry, other keys and rotation all fail closed."""

from __future__ import annotations

import time

from cryptography.fernet import Fernet

from fluxup.ui.session import Session, SessionCodec, csrf_matches


def test_round_trip_and_contents_not_readable() -> None:
    codec = SessionCodec([Fernet.generate_key()], 3600)
    session = Session("oidc:alice", ("oidc:team-a",), expires=time.time() + 60,
                      display_name="Alice")
    sealed = codec.seal_session(session)
    assert "alice" not in sealed
    assert codec.open_session(sealed) == session


def test_tampered_expired_and_foreign_cookies_are_refused() -> None:
    codec = SessionCodec([Fernet.generate_key()], 3600)
    sealed = codec.seal_session(Session("u", (), expires=time.time() + 60))
    flipped = sealed[:20] + ("A" if sealed[20] != "A" else "B") + sealed[21:]
    assert codec.open_session(flipped) is None
    assert codec.open_session("not-a-cookie") is None
    assert codec.open_session(None) is None
    expired = codec.seal_session(Session("u", (), expires=time.time() - 1))
    assert codec.open_session(expired) is None
    other = SessionCodec([Fernet.generate_key()], 3600)
    assert other.open_session(sealed) is None
    short = SessionCodec([Fernet.generate_key()], 1)
    old = short.seal({"u": "x"})
    assert short.open(old, ttl=1) is not None
    time_travel = short.open(old, ttl=-1)
    assert time_travel is None


def test_key_rotation() -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    sealed = SessionCodec([old], 60).seal_session(Session("u", (), expires=time.time() + 60))
    rotated = SessionCodec([new, old], 60)
    assert rotated.open_session(sealed) is not None


def test_csrf_comparison() -> None:
    assert csrf_matches("abc", "abc")
    assert not csrf_matches("abc", "abd")
    assert not csrf_matches("abc", None)
    assert not csrf_matches("", "")


def test_malformed_payload_is_no_session() -> None:
    codec = SessionCodec([Fernet.generate_key()], 60)
    assert codec.open_session(codec.seal({"u": "", "g": [], "c": "x", "e": 9e12})) is None
    assert codec.open_session(codec.seal({"u": "a", "g": [1], "c": "x", "e": 9e12})) is None
