"""Who is asking: the authentication, CSRF and security-header middlewares.

Installed by :func:`fluxup.ui.app.build_app`. Every request except static files, the
login routes and ``/healthz`` needs a person: a sealed session cookie (browser), or an
OIDC ID token as ``Authorization: Bearer`` (API clients; no cookie, so no CSRF). Pages
without one redirect to the login, ``/api/`` answers 401. Every state-changing request
made with a session cookie must carry the session's CSRF token (``X-CSRF-Token`` header
or ``csrf_token`` form field) and, when the browser sends one, a same-origin ``Origin``.

In no-auth mode (local demo on loopback only) each browser gets a session for the
configured demo user, so CSRF protection stays the same.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, urlsplit

from aiohttp import web

from fluxup.ui.keys import CODEC, OIDC, SETTINGS
from fluxup.ui.oidc import LoginError
from fluxup.ui.session import Session, csrf_matches
from fluxup.ui.settings import AuthMode

__all__ = ["SESSION_COOKIE", "User", "auth_middleware", "security_headers", "set_session",
           "user_of"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SESSION_COOKIE: Final = "fluxup_session"
_PUBLIC_PREFIXES = ("/static/", "/auth/", "/healthz")
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
_USER: Final = web.RequestKey("fluxup_user", object)


@dataclass(frozen=True)
class User:
    """The person behind a request; ``csrf`` is empty for bearer-token API calls."""

    name: str
    groups: tuple[str, ...]
    display_name: str
    csrf: str
    via: str  # "session" | "bearer" | "demo"


def user_of(request: web.Request) -> User:
    user = request.get(_USER)
    if not isinstance(user, User):  # a route outside the auth middleware: a bug, never data
        raise web.HTTPUnauthorized(text="not logged in")
    return user


def cookie_name(request: web.Request) -> str:
    # __Host- cookies: Secure, Path=/, no Domain; the browser enforces all three.
    return f"__Host-{SESSION_COOKIE}" if request.app[SETTINGS].cookie_secure else SESSION_COOKIE


def set_session(request: web.Request, response: web.StreamResponse, session: Session) -> None:
    settings = request.app[SETTINGS]
    response.set_cookie(cookie_name(request), request.app[CODEC].seal_session(session),
                        max_age=settings.session_ttl_seconds, path="/", httponly=True,
                        secure=settings.cookie_secure, samesite="Lax")


def _unauthenticated(request: web.Request, why: str) -> web.StreamResponse:
    if request.path.startswith("/api/"):
        return web.json_response({"error": "unauthenticated", "message": why}, status=401,
                                 headers={"WWW-Authenticate": 'Bearer realm="fluxup"'})
    target = request.path_qs if request.method == "GET" else "/"
    raise web.HTTPFound(f"/auth/login?next={quote(target, safe='')}")


def _forbidden_csrf(request: web.Request, why: str) -> web.StreamResponse:
    message = f"{why}; reload the page and try again"
    if request.path.startswith("/api/"):
        return web.json_response({"error": "csrf", "message": message}, status=403)
    return web.Response(text=message, status=403)


async def _csrf_ok(request: web.Request, user: User) -> str | None:
    """``None`` when the request passes, else why not."""
    origin = request.headers.get("Origin")
    if origin is not None:
        expected = urlsplit(request.app[SETTINGS].public_url)
        given = urlsplit(origin)
        if (given.scheme, given.netloc) != (expected.scheme, expected.netloc):
            return f"cross-origin request from {origin} refused"
    token = request.headers.get("X-CSRF-Token")
    if token is None and request.content_type in ("application/x-www-form-urlencoded",
                                                   "multipart/form-data"):
        form = await request.post()
        value = form.get("csrf_token")
        token = value if isinstance(value, str) else None
    if not csrf_matches(user.csrf, token):
        return "CSRF token missing or invalid"
    return None


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(_PUBLIC_PREFIXES):
        return await handler(request)
    settings = request.app[SETTINGS]
    header = request.headers.get("Authorization", "")
    issue_demo_session: Session | None = None
    if header.startswith("Bearer ") and request.path.startswith("/api/"):
        oidc = request.app.get(OIDC)
        if oidc is None:
            return _unauthenticated(request, "bearer tokens need OIDC to be configured")
        try:
            principal = await oidc.verify(header.removeprefix("Bearer ").strip())
        except LoginError as exc:
            return _unauthenticated(request, str(exc))
        user = User(principal.user, principal.groups, principal.display_name, "", "bearer")
    else:
        session = request.app[CODEC].open_session(request.cookies.get(cookie_name(request)))
        if session is None and settings.auth is AuthMode.NONE:
            session = Session(settings.demo_user, settings.demo_groups,
                              expires=time.time() + settings.session_ttl_seconds)
            issue_demo_session = session
        if session is None:
            return _unauthenticated(request, "log in first (session missing or expired)")
        via = "demo" if settings.auth is AuthMode.NONE else "session"
        user = User(session.user, session.groups, session.display_name or session.user,
                    session.csrf, via)
        if request.method in _UNSAFE:
            problem = await _csrf_ok(request, user)
            if problem is not None:
                return _forbidden_csrf(request, problem)
    request[_USER] = user
    response = await handler(request)
    if issue_demo_session is not None:
        set_session(request, response, issue_demo_session)
    return response


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
        _harden(response)
        raise
    _harden(response)
    return response


def _harden(response: web.StreamResponse) -> None:
    if response.prepared:
        return
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Cache-Control", "no-store")
