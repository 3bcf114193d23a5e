"""Two-factor authentication: mailed codes, TOTP, backup codes and challenges."""

import time

import httpx
import pyotp
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tests.auth.helpers import bearer, fetch_all, last_mail, login, mailed_code, sign_in
from tests.core.test_app import assert_envelope
from tests.factories import make_user
from trw_platform.auth.models import BackupCode, TwoFactorChallenge, User
from trw_platform.core.audit import AuditEvent
from trw_platform.core.db import utc_now

pytestmark = [pytest.mark.anyio, pytest.mark.accounts]

EMAIL = "ada@example.com"


async def audit_actions(app: FastAPI) -> list[str]:
    events = await fetch_all(app, select(AuditEvent).order_by(AuditEvent.occurred_at))
    return [event.action for event in events]


async def enable_email_2fa(
    app: FastAPI, client: httpx.AsyncClient, access_token: str
) -> list[str]:
    started = await client.post("/v1/auth/2fa/enable", headers=bearer(access_token))
    assert started.status_code == 200, started.text
    code = await mailed_code(app, EMAIL)
    confirmed = await client.post(
        "/v1/auth/2fa/confirm-enable",
        json={"code": code},
        headers=bearer(access_token),
    )
    assert confirmed.status_code == 200, confirmed.text
    return confirmed.json()["backup_codes"]


@pytest.fixture
async def signed_in(client: httpx.AsyncClient, db: AsyncSession) -> dict:
    account = await make_user(db, EMAIL)
    pair = await sign_in(client, EMAIL, account.password)
    return {"password": account.password, **pair}


async def start_challenge(client: httpx.AsyncClient, password: str) -> dict:
    response = await login(client, EMAIL, password)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["two_factor_required"] is True
    return body


async def test_enable_mails_code_and_confirm_returns_backups(
    app: FastAPI, client: httpx.AsyncClient, signed_in: dict
) -> None:
    started = await client.post(
        "/v1/auth/2fa/enable", headers=bearer(signed_in["access_token"])
    )
    status = await client.get(
        "/v1/auth/2fa/status", headers=bearer(signed_in["access_token"])
    )
    code = await mailed_code(app, EMAIL)
    confirmed = await client.post(
        "/v1/auth/2fa/confirm-enable",
        json={"code": code},
        headers=bearer(signed_in["access_token"]),
    )

    assert started.json() == {
        "method": "email",
        "code_sent": True,
        "expires_in": 600,
        "secret": None,
        "otpauth_uri": None,
    }
    assert status.json()["pending_method"] == "email"
    assert len(code) == 8
    backups = confirmed.json()["backup_codes"]
    assert len(backups) == 10
    assert len(set(backups)) == 10
    after = await client.get(
        "/v1/auth/2fa/status", headers=bearer(signed_in["access_token"])
    )
    assert after.json() == {
        "enabled": True,
        "method": "email",
        "backup_codes_remaining": 10,
        "pending_method": None,
    }
    actions = await audit_actions(app)
    assert "two_factor.code_sent" in actions
    assert "two_factor.enabled" in actions


async def test_codes_stored_only_as_hashes(
    app: FastAPI, client: httpx.AsyncClient, signed_in: dict
) -> None:
    backups = await enable_email_2fa(app, client, signed_in["access_token"])
    challenge = await start_challenge(client, signed_in["password"])
    code = await mailed_code(app, EMAIL)

    stored_codes = await fetch_all(app, select(BackupCode))
    challenges = await fetch_all(app, select(TwoFactorChallenge))
    stored = {c.code_hash for c in stored_codes} | {c.code_hash for c in challenges}
    stored |= {c.token_hash for c in challenges}
    for secret in [*backups, code, challenge["challenge_token"]]:
        assert all(secret not in (value or "") for value in stored)
    events = await fetch_all(app, select(AuditEvent))
    assert all(code not in str(event.details) for event in events)


async def test_confirm_rejects_wrong_code(
    app: FastAPI, client: httpx.AsyncClient, signed_in: dict
) -> None:
    headers = bearer(signed_in["access_token"])
    await client.post("/v1/auth/2fa/enable", headers=headers)

    response = await client.post(
        "/v1/auth/2fa/confirm-enable", json={"code": "00000000"}, headers=headers
    )
    status = await client.get("/v1/auth/2fa/status", headers=headers)

    assert_envelope(response, 400, "invalid_code")
    assert status.json()["enabled"] is False


async def test_confirm_without_enable_conflicts(
    client: httpx.AsyncClient, signed_in: dict
) -> None:
    response = await client.post(
        "/v1/auth/2fa/confirm-enable",
        json={"code": "12345678"},
        headers=bearer(signed_in["access_token"]),
    )

    assert_envelope(response, 409, "no_pending_enablement")


async def test_enable_twice_conflicts(
    app: FastAPI, client: httpx.AsyncClient, signed_in: dict
) -> None:
    await enable_email_2fa(app, client, signed_in["access_token"])

    response = await client.post(
        "/v1/auth/2fa/enable", headers=bearer(signed_in["access_token"])
    )

    assert_envelope(response, 409, "two_factor_enabled")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/auth/2fa/enable"),
        ("POST", "/v1/auth/2fa/confirm-enable"),
        ("POST", "/v1/auth/2fa/disable"),
        ("GET", "/v1/auth/2fa/status"),
    ],
)
async def test_two_factor_routes_need_sign_in(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await client.request(method, path, json={"code": "12345678"})

    assert_envelope(response, 401, "unauthorized")


async def test_login_with_mailed_code(
    app: FastAPI, client: httpx.AsyncClient, signed_in: dict
) -> None:
    await enable_email_2fa(app, client, signed_in["access_token"])

    challenge = await start_challenge(client, signed_in["password"])
    code = await mailed_code(app, EMAIL)
    verified = await client.post(
        "/v1/auth/2fa/verify",
        json={"challenge_token": challenge["challenge_token"], "code": code},
    )
    again = await client.post(
        "/v1/auth/2fa/verify",
        json={"challenge_token": challenge["challenge_token"], "code": code},
    )

    assert set(challenge) == {
        "two_factor_required",
        "challenge_token",
        "method",
        "expires_in",
    }
    assert challenge["method"] == "email"
    assert "access_token" not in challenge
    assert verified.status_code == 200
    me = await client.get(
        "/v1/auth/me", headers=bearer(verified.json()["access_token"])
    )
    assert me.status_code == 200
    assert_envelope(again, 401, "invalid_challenge")
    assert "two_factor.passed" in await audit_actions(app)


async def test_code_bound_to_its_challenge(
    app: FastAPI, client: httpx.AsyncClient, signed_in: dict
) -> None:
    await enable_email_2fa(app, client, signed_in["access_token"])
    first = await start_challenge(client, signed_in["password"])
    first_code = await mailed_code(app, EMAIL)
    second = await start_challenge(client, signed_in["password"])

    response = await client.post(
        "/v1/auth/2fa/verify",
        json={"challenge_token": second["challenge_token"], "code": first_code},
    )
    still_valid = await client.post(
        "/v1/auth/2fa/verify",
        json={"challenge_token": first["challenge_token"], "code": first_code},
    )

    assert_envelope(response, 400, "invalid_code")
    assert still_valid.status_code == 200


async def test_challenge_allows_five_attempts(
    app: FastAPI, client: httpx.AsyncClient, signed_in: dict
) -> None:
    await enable_email_2fa(app, client, signed_in["access_token"])
    challenge = await start_challenge(client, signed_in["password"])
    code = await mailed_code(app, EMAIL)
    wrong = "11111111" if code != "11111111" else "22222222"

    statuses = []
    for _ in range(5):
        response = await client.post(
            "/v1/auth/2fa/verify",
            json={"challenge_token": challenge["challenge_token"], "code": wrong},
        )
        statuses.append(response.status_code)
    right = await client.post(
        "/v1/auth/2fa/verify",
        json={"challenge_token": challenge["challenge_token"], "code": code},
    )

    assert statuses == [400] * 5
    body = assert_envelope(right, 400, "invalid_code")
    assert "none left" in body["detail"]
    assert (await audit_actions(app)).count("two_factor.failed") == 5


async def test_expired_challenge_rejected(
    app: FastAPI, client: httpx.AsyncClient, signed_in: dict
) -> None:
    await enable_email_2fa(app, client, signed_in["access_token"])
    challenge = await start_challenge(client, signed_in["password"])
    code = await mailed_code(app, EMAIL)
    async with app.state.sessionmaker() as session:
        await session.execute(update(TwoFactorChallenge).values(expires_at=utc_now()))
        await session.commit()

    response = await client.post(
        "/v1/auth/2fa/verify",
        json={"challenge_token": challenge["challenge_token"], "code": code},
    )

    assert_envelope(response, 401, "invalid_challenge")


async def test_verify_rejects_unknown_challenge(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/auth/2fa/verify", json={"challenge_token": "nope", "code": "12345678"}
    )

    assert_envelope(response, 401, "invalid_challenge")


async def test_backup_code_works_once(
    app: FastAPI, client: httpx.AsyncClient, signed_in: dict
) -> None:
    backups = await enable_email_2fa(app, client, signed_in["access_token"])

    first = await start_challenge(client, signed_in["password"])
    used = await client.post(
        "/v1/auth/2fa/verify",
        json={"challenge_token": first["challenge_token"], "code": backups[0].upper()},
    )
    second = await start_challenge(client, signed_in["password"])
    reused = await client.post(
        "/v1/auth/2fa/verify",
        json={"challenge_token": second["challenge_token"], "code": backups[0]},
    )

    assert used.status_code == 200
    assert_envelope(reused, 400, "invalid_code")
    status = await client.get(
        "/v1/auth/2fa/status", headers=bearer(used.json()["access_token"])
    )
    assert status.json()["backup_codes_remaining"] == 9


async def test_disable_with_mailed_code(
    app: FastAPI, client: httpx.AsyncClient, signed_in: dict
) -> None:
    headers = bearer(signed_in["access_token"])
    await enable_email_2fa(app, client, signed_in["access_token"])

    asked = await client.post("/v1/auth/2fa/disable", headers=headers)
    code = await mailed_code(app, EMAIL)
    disabled = await client.post(
        "/v1/auth/2fa/disable", json={"code": code}, headers=headers
    )

    assert asked.json() == {"enabled": True, "code_sent": True}
    assert disabled.json() == {"enabled": False, "code_sent": False}
    status = await client.get("/v1/auth/2fa/status", headers=headers)
    assert status.json()["backup_codes_remaining"] == 0
    assert (await last_mail(app, EMAIL)).subject == (
        "Two-factor authentication was turned off"
    )
    after = await login(client, EMAIL, signed_in["password"])
    assert "access_token" in after.json()
    assert "two_factor.disabled" in await audit_actions(app)


async def test_disable_with_backup_code(
    app: FastAPI, client: httpx.AsyncClient, signed_in: dict
) -> None:
    headers = bearer(signed_in["access_token"])
    backups = await enable_email_2fa(app, client, signed_in["access_token"])

    wrong = await client.post(
        "/v1/auth/2fa/disable", json={"code": "aaaaa-aaaaa"}, headers=headers
    )
    right = await client.post(
        "/v1/auth/2fa/disable", json={"code": backups[3]}, headers=headers
    )

    assert_envelope(wrong, 400, "invalid_code")
    assert right.json()["enabled"] is False


async def test_disable_when_off_conflicts(
    client: httpx.AsyncClient, signed_in: dict
) -> None:
    response = await client.post(
        "/v1/auth/2fa/disable",
        json={"code": "12345678"},
        headers=bearer(signed_in["access_token"]),
    )

    assert_envelope(response, 409, "two_factor_disabled")


async def enable_totp(client: httpx.AsyncClient, access_token: str) -> str:
    headers = bearer(access_token)
    started = await client.post(
        "/v1/auth/2fa/enable", json={"method": "totp"}, headers=headers
    )
    assert started.status_code == 200, started.text
    secret = started.json()["secret"]
    confirmed = await client.post(
        "/v1/auth/2fa/confirm-enable",
        json={"code": pyotp.TOTP(secret).now()},
        headers=headers,
    )
    assert confirmed.status_code == 200, confirmed.text
    return secret


async def test_totp_enable_and_login(
    app: FastAPI, client: httpx.AsyncClient, signed_in: dict
) -> None:
    started = await client.post(
        "/v1/auth/2fa/enable",
        json={"method": "totp"},
        headers=bearer(signed_in["access_token"]),
    )
    body = started.json()
    assert body["code_sent"] is False
    assert body["otpauth_uri"].startswith("otpauth://totp/trw-platform:")
    secret = body["secret"]
    await client.post(
        "/v1/auth/2fa/confirm-enable",
        json={"code": pyotp.TOTP(secret).now()},
        headers=bearer(signed_in["access_token"]),
    )

    challenge = await start_challenge(client, signed_in["password"])
    # The enablement used the current step; the next one is a new code.
    next_code = pyotp.TOTP(secret).at(time.time() + 30)
    verified = await client.post(
        "/v1/auth/2fa/verify",
        json={"challenge_token": challenge["challenge_token"], "code": next_code},
    )

    assert challenge["method"] == "totp"
    assert verified.status_code == 200
    users = await fetch_all(app, select(User))
    assert users[0].two_factor_method == "totp"
    assert users[0].totp_pending_secret is None


async def test_totp_code_not_replayable(
    client: httpx.AsyncClient, signed_in: dict
) -> None:
    secret = await enable_totp(client, signed_in["access_token"])
    code = pyotp.TOTP(secret).at(time.time() + 30)

    first = await start_challenge(client, signed_in["password"])
    used = await client.post(
        "/v1/auth/2fa/verify",
        json={"challenge_token": first["challenge_token"], "code": code},
    )
    second = await start_challenge(client, signed_in["password"])
    replayed = await client.post(
        "/v1/auth/2fa/verify",
        json={"challenge_token": second["challenge_token"], "code": code},
    )

    assert used.status_code == 200
    assert_envelope(replayed, 400, "invalid_code")


async def test_totp_login_sends_no_mail(
    app: FastAPI, client: httpx.AsyncClient, signed_in: dict
) -> None:
    await enable_totp(client, signed_in["access_token"])
    before = len(await fetch_all(app, select(TwoFactorChallenge)))

    await start_challenge(client, signed_in["password"])

    challenges = await fetch_all(app, select(TwoFactorChallenge))
    assert len(challenges) == before + 1
    assert challenges[-1].code_hash is None


async def test_totp_disable_needs_a_code(
    client: httpx.AsyncClient, signed_in: dict
) -> None:
    secret = await enable_totp(client, signed_in["access_token"])
    headers = bearer(signed_in["access_token"])

    without = await client.post("/v1/auth/2fa/disable", headers=headers)
    with_code = await client.post(
        "/v1/auth/2fa/disable",
        json={"code": pyotp.TOTP(secret).at(time.time() + 30)},
        headers=headers,
    )

    assert_envelope(without, 400, "invalid_code")
    assert with_code.json()["enabled"] is False
