"""Notification delivery against real local receivers.

Every channel kind FluxUp documents is exercised against a real server on 127.0.0.1: an
aiohttp server speaking the HTTP side of Apprise's ``json://`` (generic webhook),
``ntfy://`` and ``gotify://`` services and of notification-controller's events endpoint,
and an aiosmtpd SMTP server for ``mailto://``. Each test sends every notice kind, and
the retry tests make the receiver fail first.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiosmtpd.controller import Controller

from fluxup.adapters.notify import AppriseChannel, FluxEventsChannel, Message, Notifier
from fluxup.errors import ConfigError
from fluxup.logic.notices import (
    Notice,
    NoticeKind,
    Subject,
    build_flux_event,
    build_text,
    level_of,
)
from fluxup.sandbox.processes import free_port

SECRET = "s3cr3t-Pa55"


@dataclass
class Receiver:
    """An HTTP server recording requests; answers ``fail_first`` requests with 500."""

    fail_first: int = 0
    hang: bool = False
    release: asyncio.Event = field(default_factory=asyncio.Event)
    requests: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append({"path": request.path, "query": dict(request.query),
                              "headers": dict(request.headers), "body": body})
        if self.hang:
            await self.release.wait()
        if self.fail_first > 0:
            self.fail_first -= 1
            return web.Response(status=500, text="receiver down")
        return web.json_response({"ok": True}, status=200)

    def bodies(self) -> list[Any]:
        return [json.loads(r["body"]) for r in self.requests]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    rec.port = free_port()
    await web.TCPSite(runner, "127.0.0.1", rec.port).start()
    yield rec
    rec.release.set()
    await runner.cleanup()


def notice(kind: NoticeKind) -> Notice:
    return Notice(
        kind=kind, app="apps/redis",
        subject=Subject("HelmRelease", "apps", "redis", uid="u-1"),
        from_version="12.4.0", to_version="12.5.0", request="apps/redis-up",
        detail="HealthCheckFailed: pods not ready" if "Failed" in kind else None,
        duration_seconds=75.0, snapshots=("redis-up-data",), origin="ui",
    )


def message(kind: NoticeKind) -> Message:
    import datetime as dt

    n = notice(kind)
    title, body = build_text(n, "https://fluxup.example")
    return Message(title, body, level_of(kind),
                   build_flux_event(n, dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "op-0"))


def notifier(*channels: Any, attempts: int = 3) -> tuple[Notifier, list[tuple[str, bool]]]:
    results: list[tuple[str, bool]] = []
    return (Notifier(channels, attempts=attempts, backoff=0.01,
                     on_result=lambda k, ok: results.append((k, ok))), results)


async def test_json_webhook_gets_every_notice(receiver: Receiver) -> None:
    n, results = notifier(AppriseChannel(f"json://user:{SECRET}@127.0.0.1:{receiver.port}/hook"))
    for kind in NoticeKind:
        n.submit(message(kind))
    await n.drain(within=120)
    bodies = receiver.bodies()
    assert len(bodies) == len(NoticeKind)
    titles = {b["title"] for b in bodies}
    assert titles == {message(k).title for k in NoticeKind}
    failed = next(b for b in bodies if b["title"].startswith("Upgrade of apps/redis"))
    assert failed["type"] == "failure"
    assert "HealthCheckFailed" in failed["message"]
    assert "https://fluxup.example/apps/apps/redis/rollback" in failed["message"]
    assert {r["path"] for r in receiver.requests} == {"/hook"}
    assert results == [("json", True)] * len(NoticeKind)
    await n.aclose()


async def test_ntfy_and_gotify_get_every_notice(receiver: Receiver) -> None:
    n, results = notifier(AppriseChannel(f"ntfy://127.0.0.1:{receiver.port}/fluxup"),
                          AppriseChannel(f"gotify://127.0.0.1:{receiver.port}/{SECRET}"))
    for kind in NoticeKind:
        n.submit(message(kind))
    await n.drain(within=120)
    assert len(receiver.requests) == 2 * len(NoticeKind)
    gotify = [r for r in receiver.requests if r["path"].startswith("/message")]
    ntfy = [r for r in receiver.requests if not r["path"].startswith("/message")]
    assert len(gotify) == len(ntfy) == len(NoticeKind)
    titles = {json.loads(r["body"])["title"] for r in gotify}
    assert titles == {message(k).title for k in NoticeKind}
    assert all(b"apps/redis" in r["body"] or "apps/redis" in json.dumps(r["headers"])
               for r in ntfy)
    assert sorted(results) == sorted([("gotify", True), ("ntfy", True)] * len(NoticeKind))
    await n.aclose()


async def test_flux_events_reach_the_events_endpoint(receiver: Receiver) -> None:
    n, _ = notifier(FluxEventsChannel(f"http://127.0.0.1:{receiver.port}/"))
    for kind in NoticeKind:
        n.submit(message(kind))
    await n.drain(within=120)
    events = receiver.bodies()
    assert {e["reason"] for e in events} == {str(k) for k in NoticeKind}
    for event in events:
        assert event["involvedObject"] == {"apiVersion": "helm.toolkit.fluxcd.io/v2",
                                           "kind": "HelmRelease", "name": "redis",
                                           "namespace": "apps", "uid": "u-1"}
        assert event["reportingController"] == "fluxup-operator"
        assert event["timestamp"] == "2026-01-02T03:04:05Z"
        assert event["metadata"]["revision"] == "12.5.0"
        assert event["metadata"]["helm.toolkit.fluxcd.io/fluxup.app"] == "apps/redis"
    assert {e["severity"] for e in events if "Failed" in e["reason"]} == {"error"}
    await n.aclose()


async def test_retry_after_receiver_failure(receiver: Receiver) -> None:
    receiver.fail_first = 2
    n, results = notifier(AppriseChannel(f"json://127.0.0.1:{receiver.port}/hook"),
                          attempts=3)
    n.submit(message(NoticeKind.UPGRADE_SUCCEEDED))
    await n.drain(within=120)
    assert len(receiver.requests) == 3  # two failures, then delivered
    assert results == [("json", True)]
    await n.aclose()


async def test_gives_up_after_the_last_attempt_without_leaking(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    receiver.fail_first = 100
    n, results = notifier(AppriseChannel(f"json://admin:{SECRET}@127.0.0.1:{receiver.port}/h"),
                          FluxEventsChannel(f"http://127.0.0.1:{receiver.port}/"), attempts=2)
    n.submit(message(NoticeKind.UPGRADE_FAILED))
    await n.drain(within=120)
    assert len(receiver.requests) == 4
    assert sorted(results) == [("flux", False), ("json", False)]
    assert "failed after 2 attempts" in caplog.text
    assert SECRET not in caplog.text
    await n.aclose()


async def test_submit_never_waits_for_a_receiver(receiver: Receiver) -> None:
    receiver.hang = True
    n, _ = notifier(AppriseChannel(f"json://127.0.0.1:{receiver.port}/hook"))
    loop = asyncio.get_running_loop()
    started = loop.time()
    for kind in NoticeKind:
        n.submit(message(kind))
    assert loop.time() - started < 1.0  # submit only schedules
    await asyncio.sleep(0.2)
    assert receiver.requests  # deliveries are under way in the background
    await n.aclose(within=0.1)  # and shutting down does not wait for them either


async def test_email_through_a_real_smtp_server() -> None:
    received: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            received.append(envelope)
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        n, results = notifier(AppriseChannel(
            f"mailto://127.0.0.1:{port}?from=fluxup@example.com&to=ops@example.com"
            "&mode=insecure"))
        for kind in NoticeKind:
            n.submit(message(kind))
        await n.drain(within=120)
        await n.aclose()
    finally:
        controller.stop()
    assert len(received) == len(NoticeKind)
    assert all(e.rcpt_tos == ["ops@example.com"] for e in received)
    subjects = {line for e in received for line in e.content.decode().splitlines()
                if line.startswith("Subject:")}
    assert "Subject: Upgraded apps/redis to 12.5.0" in subjects
    assert results == [("mailto", True)] * len(NoticeKind)


def test_invalid_url_is_refused_without_showing_it() -> None:
    with pytest.raises(ConfigError) as err:
        AppriseChannel(f"nosuchservice://user:{SECRET}@host/x")
    assert SECRET not in str(err.value)
    assert "nosuchservice" in str(err.value)


def test_channel_names_hide_credentials() -> None:
    channel = AppriseChannel(f"json://admin:{SECRET}@127.0.0.1:9/hook")
    assert SECRET not in channel.name
    assert SECRET not in repr(channel)
    with pytest.raises(ConfigError):
        FluxEventsChannel("ftp://notification-controller/")
