"""Rendering, cookies and CSRF protection shared by the server-rendered pages.

CSRF uses a double-submit token: a random ``trw_csrf`` cookie (HttpOnly,
SameSite=Strict) whose value every form repeats in a hidden field. A POST
is accepted only when both match and any ``Origin`` header names this
server. The signed-in state is the access JWT from a normal login, kept in
an HttpOnly ``trw_session`` cookie for the token's lifetime.
"""

import secrets
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.ext.asyncio import AsyncSession

from trw_platform.auth import sessions
from trw_platform.core.security import constant_time_equals

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
STATIC_DIR = Path(__file__).parent / "static"

CSRF_COOKIE = "trw_csrf"
SESSION_COOKIE = "trw_session"
CHALLENGE_COOKIE = "trw_challenge"
CSRF_FIELD = "csrf_token"

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; "
    "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # Pages carry tokens in their URLs, which must not leak to other sites.
    # "no-referrer" would also turn the Origin of our own form posts into
    # "null" in Chromium, which the CSRF check rejects.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def is_https(request: Request) -> bool:
    public_url: str = request.app.state.settings.PUBLIC_URL
    return request.url.scheme == "https" or public_url.startswith("https://")


def csrf_token(request: Request) -> str:
    """Return the request's CSRF token, minting one when the cookie is absent."""
    existing = request.cookies.get(CSRF_COOKIE, "")
    if len(existing) >= 32:
        return existing
    token: str = getattr(request.state, "new_csrf_token", "") or secrets.token_urlsafe(
        32
    )
    request.state.new_csrf_token = token
    return token


def render(
    request: Request, template: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    token = csrf_token(request)
    response = TEMPLATES.TemplateResponse(
        request,
        template,
        {"csrf_token": token, **context},
        status_code=status_code,
        headers=SECURITY_HEADERS,
    )
    if request.cookies.get(CSRF_COOKIE) != token:
        set_cookie(request, response, CSRF_COOKIE, token, samesite="strict")
    return response


def set_cookie(
    request: Request,
    response: Response,
    name: str,
    value: str,
    *,
    max_age: int | None = None,
    samesite: str = "lax",
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        secure=is_https(request),
        httponly=True,
        samesite=samesite,  # type: ignore[arg-type]
    )


def csrf_is_valid(request: Request, submitted: str) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not submitted or not constant_time_equals(cookie, submitted):
        return False
    origin = request.headers.get("origin")
    return origin is None or origin == _own_origin(request)


def _own_origin(request: Request) -> str:
    public_url: str = request.app.state.settings.PUBLIC_URL.rstrip("/")
    if public_url:
        scheme, _, rest = public_url.partition("://")
        return f"{scheme}://{rest.split('/', 1)[0]}"
    return f"{request.url.scheme}://{request.url.netloc}"


async def signed_in_user(
    request: Request, session: AsyncSession
) -> sessions.SignedIn | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    return await sessions.authenticate(
        session, settings=request.app.state.settings, access_token=token
    )


def redirect(url: str) -> Response:
    return Response(status_code=303, headers={"Location": url, **SECURITY_HEADERS})
