"""RFC 8628 endpoints: device code, token poll, and approval by API."""

from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field, ValidationError

from trw_platform.auth import device, device_approval, sessions
from trw_platform.auth.dependencies import (
    BaseUrlDep,
    OriginDep,
    RecordingSessionDep,
    SettingsDep,
    bearer_credential,
    check_rate,
)
from trw_platform.auth.errors import DeviceFlowError
from trw_platform.core.body import read_json_body
from trw_platform.core.errors import Unauthorized
from trw_platform.core.requests import client_ip
from trw_platform.orgs import keys
from trw_platform.orgs import service as org_service

router = APIRouter(prefix="/device")

MAX_FORM_BYTES = 16 * 1024
CLIENT_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,100}$"
_FORM = "application/x-www-form-urlencoded"


class DeviceCodeRequest(BaseModel):
    client_id: str = Field(pattern=CLIENT_ID_PATTERN)


class DeviceTokenRequest(BaseModel):
    client_id: str = Field(pattern=CLIENT_ID_PATTERN)
    device_code: str = Field(min_length=1, max_length=256)
    grant_type: str = Field(max_length=100)


class DeviceCodeRead(BaseModel):
    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str
    expires_in: int
    interval: int


class DeviceTokenRead(BaseModel):
    api_key: str
    key_id: str
    organization_id: str
    org_name: str
    user_email: str | None


class DeviceDecisionRequest(BaseModel):
    user_code: str = Field(min_length=1, max_length=20)
    organization_id: str | None = Field(default=None, max_length=32)


Model = TypeVar("Model", bound=BaseModel)


async def read_fields(request: Request, model: type[Model]) -> Model:
    """Parse a form (as RFC 8628 specifies) or JSON (as trw-mcp sends) body.

    Raises the RFC's ``invalid_request`` error for a missing or bad field.
    """
    fields: Any
    if request.headers.get("content-type", "").startswith(_FORM):
        form = await request.form(max_files=0)
        fields = {name: value for name, value in form.items() if isinstance(value, str)}
    else:
        fields = await read_json_body(request, max_bytes=MAX_FORM_BYTES)
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        names = ", ".join(
            str(error["loc"][0]) for error in exc.errors() if error["loc"]
        )
        raise DeviceFlowError(
            "invalid_request", f"Missing or invalid field: {names or 'body'}."
        ) from exc


@router.post(
    "/code",
    responses={
        400: {"description": "invalid_request"},
        429: {"description": "Rate limited"},
    },
)
async def create_device_code(
    request: Request,
    session: RecordingSessionDep,
    origin: OriginDep,
    base_url: BaseUrlDep,
) -> DeviceCodeRead:
    """Start a device sign-in: returns the device code and the code the user enters."""
    await check_rate(request, "device_code", client_ip(request.scope))
    body = await read_fields(request, DeviceCodeRequest)
    code = await device.start(session, client_id=body.client_id, origin=origin)
    return DeviceCodeRead(
        device_code=code.device_code,
        user_code=code.user_code,
        verification_uri=f"{base_url}/device",
        verification_uri_complete=f"{base_url}/device?user_code={code.user_code}",
        expires_in=code.expires_in,
        interval=code.interval,
    )


@router.post(
    "/token",
    responses={
        400: {
            "description": "authorization_pending, slow_down, expired_token, "
            "access_denied, invalid_grant, invalid_request or unsupported_grant_type"
        }
    },
)
async def create_device_token(
    request: Request, session: RecordingSessionDep, origin: OriginDep
) -> DeviceTokenRead:
    """Poll for the API key of an approved device sign-in."""
    body = await read_fields(request, DeviceTokenRequest)
    if body.grant_type != device.GRANT_TYPE:
        raise DeviceFlowError(
            "unsupported_grant_type", f"grant_type must be {device.GRANT_TYPE}."
        )
    issued = await device.poll(
        session, device_code=body.device_code, client_id=body.client_id, origin=origin
    )
    return DeviceTokenRead(
        api_key=issued.api_key,
        key_id=issued.key_id,
        organization_id=issued.organization.id,
        org_name=issued.organization.name,
        user_email=issued.user_email,
    )


async def _decide(
    request: Request,
    session: RecordingSessionDep,
    settings: SettingsDep,
    origin: OriginDep,
    body: DeviceDecisionRequest,
    *,
    approve: bool,
) -> None:
    credential = bearer_credential(request)
    if credential is None:
        raise Unauthorized("Missing bearer credential: an access token or API key.")
    if credential.startswith(keys.PREFIXES):
        api_key = await org_service.find_active_key(session, raw_key=credential)
        if api_key is None:
            raise Unauthorized("Invalid, expired or revoked API key")
        await device_approval.decide_with_key(
            session,
            api_key=api_key,
            user_code=body.user_code,
            approve=approve,
            origin=origin,
        )
        return

    signed_in = await sessions.authenticate(
        session, settings=settings, access_token=credential
    )
    if signed_in is None:
        raise Unauthorized()
    await device_approval.decide_as_user(
        session,
        user=signed_in.user,
        user_code=body.user_code,
        approve=approve,
        organization_id=body.organization_id,
        origin=origin,
    )


DECISION_ERRORS = {
    401: {"description": "Missing or invalid credential"},
    403: {"description": "API key without the '*' scope"},
    404: {"description": "Unknown or expired user code, or not your organization"},
    409: {"description": "Request already decided"},
}


@router.post("/approve", status_code=204, responses=DECISION_ERRORS)
async def approve_device(
    body: DeviceDecisionRequest,
    request: Request,
    session: RecordingSessionDep,
    settings: SettingsDep,
    origin: OriginDep,
) -> Response:
    """Approve a device sign-in, with a user's access token or an API key with '*'."""
    await _decide(request, session, settings, origin, body, approve=True)
    return Response(status_code=204)


@router.post("/deny", status_code=204, responses=DECISION_ERRORS)
async def deny_device(
    body: DeviceDecisionRequest,
    request: Request,
    session: RecordingSessionDep,
    settings: SettingsDep,
    origin: OriginDep,
) -> Response:
    """Deny a device sign-in, with a user's access token or an API key with '*'."""
    await _decide(request, session, settings, origin, body, approve=False)
    return Response(status_code=204)
