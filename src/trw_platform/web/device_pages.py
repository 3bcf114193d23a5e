"""The device sign-in page: sign in (with 2FA), check the code, approve or deny."""

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from trw_platform.auth import device, device_approval, login, sessions, two_factor
from trw_platform.auth.dependencies import (
    LoginThrottleDep,
    OriginDep,
    RecordingSessionDep,
    SettingsDep,
)
from trw_platform.auth.errors import InvalidChallenge
from trw_platform.auth.schemas import normalize_email
from trw_platform.core.errors import AppError
from trw_platform.orgs import memberships
from trw_platform.web import pages

router = APIRouter(prefix="/device", include_in_schema=False)

FormText = Annotated[str, Form(max_length=1024)]
CodeField = Annotated[str, Form(max_length=20)]
CsrfField = Annotated[str, Form(alias=pages.CSRF_FIELD, max_length=100)]


def device_url(user_code: str) -> str:
    return f"/device?{urlencode({'user_code': user_code})}" if user_code else "/device"


def error_page(
    request: Request, template: str, exc: AppError, **context: object
) -> Response:
    response = pages.render(
        request, template, status_code=exc.status_code, error=exc.detail, **context
    )
    response.headers.update(exc.headers)
    return response


def expired_form(request: Request, user_code: str) -> Response:
    return pages.render(
        request,
        "device_login.html",
        status_code=403,
        user_code=user_code,
        error="The form expired or came from another site; sign in again.",
    )


@router.get("")
async def show_device_page(
    request: Request, session: RecordingSessionDep, user_code: str = ""
) -> Response:
    signed_in = await pages.signed_in_user(request, session)
    if signed_in is None:
        return pages.render(request, "device_login.html", user_code=user_code)
    if not user_code:
        return pages.render(request, "device_code.html", user=signed_in.user)
    return await _confirm_page(request, session, signed_in, user_code)


async def _confirm_page(
    request: Request,
    session: RecordingSessionDep,
    signed_in: sessions.SignedIn,
    user_code: str,
    error: str | None = None,
) -> Response:
    try:
        pending = await device.find_pending(session, user_code=user_code)
    except AppError as exc:
        return error_page(
            request, "device_code.html", exc, user=signed_in.user, user_code=user_code
        )
    rows = await memberships.list_for_user(session, user_id=signed_in.user.id)
    return pages.render(
        request,
        "device_confirm.html",
        status_code=400 if error else 200,
        user=signed_in.user,
        pending=pending,
        user_code=device.format_user_code(pending.user_code),
        organizations=[organization for _, organization in rows],
        error=error,
    )


@router.post("/login")
async def sign_in(
    request: Request,
    session: RecordingSessionDep,
    origin: OriginDep,
    settings: SettingsDep,
    throttle: LoginThrottleDep,
    email: FormText,
    password: FormText,
    csrf: CsrfField,
    user_code: CodeField = "",
) -> Response:
    if not pages.csrf_is_valid(request, csrf):
        return expired_form(request, user_code)
    try:
        outcome = await login.login(
            session,
            email=normalize_email(email),
            password=password,
            origin=origin,
            settings=settings,
            throttle=throttle,
        )
    except ValueError as exc:
        return pages.render(
            request, "device_login.html", 422, user_code=user_code, error=str(exc)
        )
    except AppError as exc:
        return error_page(request, "device_login.html", exc, user_code=user_code)

    if outcome.challenge is not None:
        return _two_factor_form(request, outcome.challenge, user_code)
    assert outcome.tokens is not None
    return _signed_in_redirect(request, outcome.tokens, user_code)


def _two_factor_form(
    request: Request, challenge: two_factor.LoginChallenge, user_code: str
) -> Response:
    response = pages.render(
        request,
        "device_two_factor.html",
        user_code=user_code,
        method=challenge.method,
    )
    pages.set_cookie(
        request,
        response,
        pages.CHALLENGE_COOKIE,
        challenge.challenge_token,
        max_age=challenge.expires_in,
        samesite="strict",
    )
    return response


def _signed_in_redirect(
    request: Request, tokens: sessions.TokenPair, user_code: str
) -> Response:
    response = pages.redirect(device_url(user_code))
    pages.set_cookie(
        request,
        response,
        pages.SESSION_COOKIE,
        tokens.access_token,
        max_age=tokens.expires_in,
    )
    response.delete_cookie(pages.CHALLENGE_COOKIE, path="/")
    return response


@router.post("/two-factor")
async def finish_two_factor(
    request: Request,
    session: RecordingSessionDep,
    origin: OriginDep,
    settings: SettingsDep,
    code: FormText,
    csrf: CsrfField,
    user_code: CodeField = "",
) -> Response:
    if not pages.csrf_is_valid(request, csrf):
        return expired_form(request, user_code)
    challenge_token = request.cookies.get(pages.CHALLENGE_COOKIE, "")
    try:
        if not challenge_token:
            raise InvalidChallenge()
        _, tokens = await two_factor.verify_login(
            session,
            challenge_token=challenge_token,
            code=code,
            origin=origin,
            settings=settings,
        )
    except InvalidChallenge as exc:
        return error_page(request, "device_login.html", exc, user_code=user_code)
    except AppError as exc:
        return error_page(request, "device_two_factor.html", exc, user_code=user_code)
    return _signed_in_redirect(request, tokens, user_code)


@router.post("/decision")
async def decide(
    request: Request,
    session: RecordingSessionDep,
    origin: OriginDep,
    user_code: CodeField,
    decision: Annotated[str, Form(pattern="^(approve|deny)$")],
    csrf: CsrfField,
    organization_id: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    signed_in = await pages.signed_in_user(request, session)
    if signed_in is None or not pages.csrf_is_valid(request, csrf):
        return expired_form(request, user_code)
    approve = decision == "approve"
    try:
        decided = await device_approval.decide_as_user(
            session,
            user=signed_in.user,
            user_code=user_code,
            approve=approve,
            organization_id=organization_id or None,
            origin=origin,
        )
    except AppError as exc:
        return await _confirm_page(request, session, signed_in, user_code, exc.detail)
    return pages.render(
        request,
        "device_done.html",
        approved=approve,
        client_id=decided.client_id,
        user=signed_in.user,
    )


@router.post("/logout")
async def sign_out(
    request: Request,
    session: RecordingSessionDep,
    origin: OriginDep,
    csrf: CsrfField,
) -> Response:
    signed_in = await pages.signed_in_user(request, session)
    if signed_in is not None and pages.csrf_is_valid(request, csrf):
        await sessions.logout(
            session, signed_in=signed_in, all_sessions=False, origin=origin
        )
    response = pages.redirect("/device")
    response.delete_cookie(pages.SESSION_COOKIE, path="/")
    return response
