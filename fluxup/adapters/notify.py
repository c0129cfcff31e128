"""Deliver FluxUp's notices: Apprise channels and Flux's notification-controller.

The reconcilers decide what to say (:mod:`fluxup.logic.notices`) and call
:meth:`Notifier.submit`, which only schedules the delivery and returns at once: a slow,
failing or unreachable receiver never delays an upgrade. Each channel is delivered to
on its own, retried with exponential backoff (``attempts``, ``backoff`` seconds, doubled
each time); what is still failing after the last attempt is logged and counted, then
dropped. At most ``max_pending`` deliveries wait at once; beyond that new ones are
dropped with a warning instead of growing memory.

Channels:

* **Apprise** (one well-kept library for Slack, Discord, Teams, ntfy, Gotify, e-mail,
  generic JSON/form/XML webhooks and many more): one URL per channel, read from a file
  mounted from a Secret (``FLUXUP_NOTIFY_URLS_FILE``; one URL per line, ``#`` comments).
* **Flux**: events in Flux's ``event.v1beta1`` format POSTed to notification-controller's
  events address (``FLUXUP_FLUX_EVENTS_URL``), so existing Alerts and Providers route them.

Credentials live in the URLs; they never reach logs, Events, status or exceptions: a
channel is only ever named by Apprise's privacy form of its URL (secrets masked, query
dropped), and Apprise's own log records below WARNING are not emitted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import apprise
import httpx

from fluxup.errors import ConfigError

__all__ = [
    "AppriseChannel",
    "Channel",
    "FluxEventsChannel",
    "Message",
    "Notifier",
    "read_urls_file",
]

log = logging.getLogger(__name__)

Level = Literal["info", "success", "warning", "failure"]


@dataclass(frozen=True)
class Message:
    """What one notice says: for people (title, body, level) and for Flux (``flux_event``,
    an ``event.v1beta1`` Event, or None when the notice has no Flux form)."""

    title: str
    body: str
    level: Level = "info"
    flux_event: Mapping[str, Any] | None = None


class Channel(Protocol):
    """One place notices go to."""

    #: kind of channel for metrics (``json``, ``mailto``, ``flux``, ...)
    kind: str
    #: a description safe to log (no credentials)
    name: str

    async def send(self, message: Message) -> bool:
        """Deliver once; True when the receiver accepted it. Never raises for a failed
        delivery."""
        ...


class AppriseChannel:
    """One Apprise URL."""

    def __init__(self, url: str) -> None:
        self._apprise = apprise.Apprise()
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if not self._apprise.add(url):
            raise ConfigError(
                f"a notification URL of kind {scheme or 'unknown'!r} is not a valid Apprise "
                "URL; check the notifications Secret (the URL is not shown because it may "
                "hold credentials)"
            )
        self.kind = scheme
        self.name = str(self._apprise[0].url(privacy=True)).split("?", 1)[0]  # type: ignore[no-untyped-call]

    def __repr__(self) -> str:
        return f"AppriseChannel({self.name!r})"

    async def send(self, message: Message) -> bool:
        try:
            result = await self._apprise.async_notify(
                body=message.body,
                title=message.title,
                notify_type=apprise.NotifyType(message.level),
                body_format=apprise.NotifyFormat.TEXT,
            )
        except Exception as exc:  # a plugin bug must not escape into the operator
            log.warning("notification to %s raised %s", self.name, type(exc).__name__)
            return False
        return bool(result)


class FluxEventsChannel:
    """notification-controller's events endpoint (POST of one Flux Event as JSON)."""

    kind = "flux"

    def __init__(
        self, url: str, timeout: float = 10.0, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(
                f"FLUXUP_FLUX_EVENTS_URL must be an http(s) URL such as "
                "http://notification-controller.flux-system.svc.cluster.local./, "
                f"got {url.split('://', 1)[0]!r}"
            )
        self._url = url
        parsed = httpx.URL(url)
        self.name = f"{parsed.scheme}://{parsed.host}" + (f":{parsed.port}" if parsed.port else "")
        self._client = httpx.AsyncClient(timeout=timeout, transport=transport)

    async def send(self, message: Message) -> bool:
        if message.flux_event is None:
            return True  # nothing to say to Flux
        try:
            response = await self._client.post(self._url, json=dict(message.flux_event))
        except httpx.HTTPError as exc:
            log.warning("Flux event to %s failed: %s", self.name, type(exc).__name__)
            return False
        if response.status_code >= 300:
            log.warning("Flux event to %s refused: HTTP %d", self.name, response.status_code)
            return False
        return True

    async def aclose(self) -> None:
        await self._client.aclose()


def read_urls_file(path: Path) -> list[str]:
    """The Apprise URLs in ``path``: one per line, blank lines and ``#`` comments skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read the notification URLs file {path}: {exc.strerror}; mount the "
            "notifications Secret there or unset FLUXUP_NOTIFY_URLS_FILE"
        ) from None
    return [line.strip() for line in text.splitlines() if line.strip()
            and not line.strip().startswith("#")]


class _QuietApprise(logging.Filter):
    """Drops Apprise's records below WARNING (its debug output may show request data)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


class Notifier:
    """Schedules deliveries of messages to every channel, with retries."""

    def __init__(
        self,
        channels: Sequence[Channel],
        *,
        attempts: int = 4,
        backoff: float = 2.0,
        max_pending: int = 200,
        on_result: Callable[[str, bool], None] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if attempts < 1:
            raise ConfigError("notification attempts must be at least 1")
        self.channels = tuple(channels)
        self._attempts = attempts
        self._backoff = backoff
        self._max_pending = max_pending
        self._on_result = on_result
        self._sleep = sleep
        self._pending: set[asyncio.Task[None]] = set()
        apprise_log = logging.getLogger("apprise")
        if not any(isinstance(f, _QuietApprise) for f in apprise_log.filters):
            apprise_log.addFilter(_QuietApprise())

    def submit(self, message: Message) -> None:
        """Deliver ``message`` in the background; never blocks, never raises."""
        for channel in self.channels:
            if len(self._pending) >= self._max_pending:
                log.warning("notification to %s dropped: %d deliveries already waiting",
                            channel.name, len(self._pending))
                continue
            task = asyncio.get_running_loop().create_task(self._deliver(channel, message))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _deliver(self, channel: Channel, message: Message) -> None:
        delay = self._backoff
        for attempt in range(1, self._attempts + 1):
            if await channel.send(message):
                if attempt > 1:
                    log.info("notification %r to %s delivered on attempt %d",
                             message.title, channel.name, attempt)
                self._count(channel.kind, True)
                return
            if attempt < self._attempts:
                log.info("notification %r to %s failed (attempt %d/%d); retrying in %.1fs",
                         message.title, channel.name, attempt, self._attempts, delay)
                await self._sleep(delay)
                delay *= 2
        log.warning("notification %r to %s failed after %d attempts; dropped",
                    message.title, channel.name, self._attempts)
        self._count(channel.kind, False)

    def _count(self, kind: str, ok: bool) -> None:
        if self._on_result is not None:
            self._on_result(kind, ok)

    async def drain(self, within: float = 10.0) -> None:
        """Wait (at most ``within`` seconds) for scheduled deliveries to finish."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=within)

    async def aclose(self, within: float = 5.0) -> None:
        """Give pending deliveries ``within`` seconds, cancel the rest, close clients."""
        await self.drain(within)
        for task in list(self._pending):
            task.cancel()
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        for channel in self.channels:
            if isinstance(channel, FluxEventsChannel):
                await channel.aclose()
