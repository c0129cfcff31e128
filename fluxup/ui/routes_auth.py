"""Login, OIDC callback and logout.

``GET /auth/login`` redirects to the provider (PKCE, state and nonce sealed in a
short-lived cookie), ``GET /auth/callback`` finishes the login and sets the session
cookie, ``POST /auth/logout`` (CSRF-checked) clears it. ``next`` targets are local paths
only, so a login link can never send a person elsewhere (no open redirect).
"""

from __future__ import annotations

import html
import time
from typing import Final

from aiohttp import web

from fluxup.ui.auth import cookie_name, set_session
from fluxup.ui.keys import CODEC, OIDC, SETTINGS
from fluxup.ui.oidc import LoginError, PendingLogin
from fluxup.ui.session import Session, csrf_matches
from fluxup.ui.settings import AuthMode

__all__ = ["routes", "safe_next"]

routes = web.RouteTableDef()

LOGIN_COOKIE: Final = "fluxup_login"
_LOGIN_TTL = 600


def safe_next(target: str | None) -> str:
    """A local path to return to after login; anything else becomes ``/``."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _login_error(message: str, status: int = 400) -> web.Response:
    return web.Response(status=status, content_type="text/html", text=(
        "<!doctype html><html lang=en><title>Login failed</title><main><h1>Login failed</h1>"
        f"<p>{html.escape(message)}</p>"
        "<p><a href=/auth/login>Try again</a></p></main></html>"))


@routes.get("/auth/login")
async def login(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    target = safe_next(request.query.get("next"))
    if settings.auth is AuthMode.NONE:
        raise web.HTTPFound(target)
    try:
        url, pending = await request.app[OIDC].begin(target)
    except LoginError as exc:
        return _login_error(str(exc), 502)
    response = web.HTTPFound(url)
    response.set_cookie(LOGIN_COOKIE, request.app[CODEC].seal(pending.to_json()),
                        max_age=_LOGIN_TTL, path="/auth/", httponly=True,
                        secure=settings.cookie_secure, samesite="Lax")
    raise response


@routes.get("/auth/callback")
async def callback(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    if "error" in request.query:
        return _login_error(f"the identity provider said: {request.query.get('error')} "
                            f"{request.query.get('error_description', '')}".strip(), 401)
    pending = PendingLogin.from_json(
        request.app[CODEC].open(request.cookies.get(LOGIN_COOKIE), ttl=_LOGIN_TTL))
    if pending is None:
        return _login_error("the login took too long or was started elsewhere; try again")
    try:
        principal = await request.app[OIDC].finish(pending, request.query.get("state", ""),
                                                   request.query.get("code", ""))
    except LoginError as exc:
        return _login_error(str(exc), 401)
    session = Session(principal.user, principal.groups,
                      expires=time.time() + settings.session_ttl_seconds,
                      display_name=principal.display_name)
    response = web.HTTPSeeOther(safe_next(pending.next_url))
    set_session(request, response, session)
    response.del_cookie(LOGIN_COOKIE, path="/auth/")
    raise response


@routes.post("/auth/logout")
async def logout(request: web.Request) -> web.StreamResponse:
    session = request.app[CODEC].open_session(request.cookies.get(cookie_name(request)))
    form = await request.post()
    token = request.headers.get("X-CSRF-Token") or form.get("csrf_token")
    if session is not None and not csrf_matches(session.csrf,
                                                token if isinstance(token, str) else None):
        return web.Response(status=403, text="CSRF token missing or invalid")
    response = web.HTTPSeeOther("/auth/logged-out")
    response.del_cookie(cookie_name(request), path="/")
    raise response


@routes.get("/auth/logged-out")
async def logged_out(request: web.Request) -> web.Response:
    return web.Response(content_type="text/html", text=(
        "<!doctype html><html lang=en><title>Logged out</title><main><h1>Logged out</h1>"
        "<p><a href=/auth/login>Log in again</a></p></main></html>"))
