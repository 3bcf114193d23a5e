"""Device sign-in (OAuth 2.0 device authorization grant, RFC 8628).

A client such as ``trw-mcp auth login`` requests a device code, shows the
user code and polls. The user approves on the verification page (or with
``trw-platform devices approve``), choosing one of their organizations; the
next poll then receives a new ``trw_dk_`` API key of that organization. The
key is created at that poll and never stored in the clear, and the device
code works only for that one poll.
"""

import secrets
from dataclasses import dataclass
from datetime import timedelta

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from trw_platform.auth.errors import (
    DeviceAlreadyDecided,
    DeviceFlowError,
    UserCodeNotFound,
)
from trw_platform.auth.models import DeviceAuthorization, User
from trw_platform.core import audit
from trw_platform.core.db import utc_now
from trw_platform.core.security import hash_token
from trw_platform.orgs import keys, scopes
from trw_platform.orgs import service as org_service
from trw_platform.orgs.models import Organization

log = structlog.get_logger(__name__)

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
# Consonants only, as RFC 8628 section 6.1 suggests: no vowels to spell
# words, and no letters that read like digits. 20^8 codes, about 34 bits.
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8
INTERVAL_SECONDS = 5
EXPIRES_IN = timedelta(seconds=900)
SLOW_DOWN_STEP = 5
# Polls are timed on arrival, so a client that sleeps exactly the interval
# may land a little early after network jitter.
POLL_GRACE = timedelta(milliseconds=500)

PENDING = "pending"
APPROVED = "approved"
DENIED = "denied"
ISSUED = "issued"


@dataclass(frozen=True)
class DeviceCode:
    device_code: str
    user_code: str
    interval: int
    expires_in: int


@dataclass(frozen=True)
class IssuedKey:
    api_key: str
    key_id: str
    organization: Organization
    user_email: str | None


def format_user_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def normalize_user_code(entered: str) -> str:
    return "".join(ch for ch in entered.upper() if ch.isalpha())


async def start(
    session: AsyncSession, *, client_id: str, origin: audit.Origin
) -> DeviceCode:
    """Create a device authorization request."""
    device_code = secrets.token_urlsafe(32)
    user_code = await _unused_user_code(session)
    session.add(
        DeviceAuthorization(
            device_code_hash=hash_token(device_code),
            user_code=user_code,
            client_id=client_id,
            interval=INTERVAL_SECONDS,
            expires_at=utc_now() + EXPIRES_IN,
            requester_ip=origin.ip,
            requester_user_agent=origin.user_agent,
        )
    )
    await session.flush()
    return DeviceCode(
        device_code=device_code,
        user_code=format_user_code(user_code),
        interval=INTERVAL_SECONDS,
        expires_in=int(EXPIRES_IN.total_seconds()),
    )


async def _unused_user_code(session: AsyncSession) -> str:
    while True:
        code = "".join(
            secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH)
        )
        existing = await session.scalar(
            select(DeviceAuthorization.id).where(DeviceAuthorization.user_code == code)
        )
        if existing is None:
            return code


async def poll(
    session: AsyncSession, *, device_code: str, client_id: str, origin: audit.Origin
) -> IssuedKey:
    """Handle one token poll; raises DeviceFlowError with the RFC 8628 code.

    The poll time (and a slowed-down interval) is committed with the error.
    """
    request = await session.scalar(
        select(DeviceAuthorization).where(
            DeviceAuthorization.device_code_hash == hash_token(device_code)
        )
    )
    if request is None or request.client_id != client_id:
        raise DeviceFlowError("invalid_grant", "The device code is not valid.")
    _check_state(request)
    await _check_pace(session, request)
    if request.status == PENDING:
        raise DeviceFlowError(
            "authorization_pending", "The user has not approved the request yet."
        )
    return await _issue(session, request, origin)


def _check_state(request: DeviceAuthorization) -> None:
    if request.status == ISSUED:
        raise DeviceFlowError(
            "invalid_grant", "The device code was already used; start again."
        )
    if request.status == DENIED:
        raise DeviceFlowError("access_denied", "The user denied the request.")
    if request.expires_at <= utc_now():
        raise DeviceFlowError(
            "expired_token", "The device code has expired; start again."
        )


async def _check_pace(session: AsyncSession, request: DeviceAuthorization) -> None:
    now = utc_now()
    previous, request.last_polled_at = request.last_polled_at, now
    too_soon = previous is not None and (
        now - previous < timedelta(seconds=request.interval) - POLL_GRACE
    )
    if too_soon:
        # RFC 8628 section 3.5: the client adds 5 seconds for this and every
        # later poll, and so does the server's expectation.
        request.interval += SLOW_DOWN_STEP
    await session.flush()
    if too_soon:
        raise DeviceFlowError(
            "slow_down", f"Poll at most every {request.interval} seconds."
        )


async def _issue(
    session: AsyncSession, request: DeviceAuthorization, origin: audit.Origin
) -> IssuedKey:
    # Claim the approval first, so two racing polls cannot both get a key.
    claimed = await session.execute(
        update(DeviceAuthorization)
        .where(
            DeviceAuthorization.id == request.id,
            DeviceAuthorization.status == APPROVED,
        )
        .values(status=ISSUED)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1 or request.organization_id is None:  # type: ignore[attr-defined]
        raise DeviceFlowError("invalid_grant", "The device code was already used.")

    organization = await session.get_one(Organization, request.organization_id)
    api_key, raw_key = await org_service.create_api_key(
        session,
        organization_id=organization.id,
        name=f"{request.client_id} {utc_now():%Y-%m-%d}",
        scopes=[scopes.ALL],
        prefix=keys.DEVICE_PREFIX,
        origin=origin,
        actor_user_id=request.user_id,
    )
    request.api_key_id = api_key.id
    user = await session.get(User, request.user_id) if request.user_id else None
    log.info("device.key_issued", authorization_id=request.id, key_id=api_key.id)
    return IssuedKey(raw_key, api_key.id, organization, user.email if user else None)


async def find_pending(session: AsyncSession, *, user_code: str) -> DeviceAuthorization:
    """Return the open request for a user code; raises UserCodeNotFound."""
    request = await session.scalar(
        select(DeviceAuthorization).where(
            DeviceAuthorization.user_code == normalize_user_code(user_code)
        )
    )
    if request is None or request.expires_at <= utc_now():
        raise UserCodeNotFound()
    if request.status != PENDING:
        raise DeviceAlreadyDecided()
    return request


async def decide(
    session: AsyncSession,
    *,
    user_code: str,
    approve: bool,
    organization_id: str | None,
    user_id: str | None,
    origin: audit.Origin,
) -> DeviceAuthorization:
    """Approve (for ``organization_id``) or deny a pending request.

    The caller has checked that the approver may act for the organization.
    """
    request = await find_pending(session, user_code=user_code)
    request.status = APPROVED if approve else DENIED
    request.user_id = user_id
    request.organization_id = organization_id if approve else None
    request.decided_at = utc_now()
    await session.flush()
    action = "device.approved" if approve else "device.denied"
    await audit.record(
        session,
        action=action,
        origin=origin,
        actor_user_id=user_id,
        organization_id=request.organization_id,
        subject_id=request.id,
        details={"client_id": request.client_id},
    )
    log.info(
        action, authorization_id=request.id, organization_id=request.organization_id
    )
    return request


async def list_pending(session: AsyncSession) -> list[DeviceAuthorization]:
    result = await session.scalars(
        select(DeviceAuthorization)
        .where(
            DeviceAuthorization.status == PENDING,
            DeviceAuthorization.expires_at > utc_now(),
        )
        .order_by(DeviceAuthorization.created_at)
    )
    return list(result)
