"""Pages behind the links in account mails: verify an address, reset a password.

A GET only shows a form, so mail scanners that prefetch links use nothing up;
the POST from that form does the work.
"""

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from trw_platform.auth import accounts
from trw_platform.auth.dependencies import OriginDep, RecordingSessionDep
from trw_platform.core.errors import AppError
from trw_platform.web import pages

router = APIRouter(include_in_schema=False)

TokenField = Annotated[str, Form(max_length=256)]
CsrfField = Annotated[str, Form(alias=pages.CSRF_FIELD, max_length=100)]


def expired(request: Request, template: str, token: str) -> Response:
    return pages.render(
        request,
        template,
        status_code=403,
        token=token,
        error="The form expired or came from another site; open the link again.",
    )


@router.get("/verify-email")
async def show_verify_email(request: Request, token: str = "") -> Response:
    return pages.render(request, "verify_email.html", token=token)


@router.post("/verify-email")
async def submit_verify_email(
    request: Request,
    session: RecordingSessionDep,
    origin: OriginDep,
    token: TokenField,
    csrf: CsrfField,
) -> Response:
    if not pages.csrf_is_valid(request, csrf):
        return expired(request, "verify_email.html", token)
    try:
        await accounts.verify_email(session, raw_token=token, origin=origin)
    except AppError as exc:
        return pages.render(
            request, "verify_email.html", exc.status_code, token="", error=exc.detail
        )
    return pages.render(request, "verify_email.html", token="", verified=True)


@router.get("/reset-password")
async def show_reset_password(request: Request, token: str = "") -> Response:
    return pages.render(request, "reset_password.html", token=token)


@router.post("/reset-password")
async def submit_reset_password(
    request: Request,
    session: RecordingSessionDep,
    origin: OriginDep,
    token: TokenField,
    password: Annotated[str, Form(max_length=1024)],
    csrf: CsrfField,
) -> Response:
    if not pages.csrf_is_valid(request, csrf):
        return expired(request, "reset_password.html", token)
    try:
        await accounts.reset_password(
            session, raw_token=token, password=password, origin=origin
        )
    except AppError as exc:
        return pages.render(
            request,
            "reset_password.html",
            exc.status_code,
            token=token,
            error=exc.detail,
        )
    return pages.render(request, "reset_password.html", token="", changed=True)
