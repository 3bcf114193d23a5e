"""Registration, email verification, password reset and password change."""

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tests.auth.helpers import (
    bearer,
    fetch_all,
    last_mail,
    link_token,
    login,
    mails_to,
    sign_in,
)
from tests.core.test_app import assert_envelope
from tests.factories import make_user
from trw_platform.auth.models import EmailToken, User
from trw_platform.core.audit import AuditEvent
from trw_platform.core.db import utc_now
from trw_platform.orgs.models import Membership, Organization

pytestmark = [pytest.mark.anyio, pytest.mark.accounts]

PASSWORD = "purple elephant sunrise"


async def register(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD
) -> httpx.Response:
    return await client.post(
        "/v1/auth/register", json={"email": email, "password": password}
    )


async def actions(app: FastAPI) -> list[str]:
    events = await fetch_all(app, select(AuditEvent).order_by(AuditEvent.occurred_at))
    return [event.action for event in events]


async def test_register_creates_user_and_owned_org(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    response = await register(client, "  Grace@Example.COM ")

    assert response.status_code == 202
    users = await fetch_all(app, select(User))
    assert [user.email for user in users] == ["grace@example.com"]
    assert users[0].email_verified_at is None
    assert users[0].password_hash.startswith("$argon2id$")
    assert PASSWORD not in users[0].password_hash
    memberships = await fetch_all(app, select(Membership))
    assert [(m.user_id, m.role) for m in memberships] == [(users[0].id, "owner")]
    organizations = await fetch_all(app, select(Organization))
    assert organizations[0].name == "grace"
    assert "user.registered" in await actions(app)


async def test_register_mails_verification_link(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await register(client, "grace@example.com")

    message = await last_mail(app, "grace@example.com")
    assert message.subject == "Confirm your email address"
    assert message.links[0].startswith("http://testserver/verify-email?token=")
    assert message.status == "queued"


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short1!", "at least 8"),
        ("x" * 129, "at most 128"),
        ("password123", "common passwords"),
        ("Qwerty123", "common passwords"),
        ("grace@example.com", "email address"),
    ],
)
async def test_register_rejects_weak_password(
    app: FastAPI, client: httpx.AsyncClient, password: str, reason: str
) -> None:
    response = await register(client, "grace@example.com", password)

    body = assert_envelope(response, 422, "weak_password")
    assert reason in body["detail"]
    assert await fetch_all(app, select(User)) == []


async def test_register_accepts_long_passphrase(client: httpx.AsyncClient) -> None:
    response = await register(client, "grace@example.com", "ü" * 128)

    assert response.status_code == 202


@pytest.mark.parametrize("email", ["", "not-an-address", "a@b", "a b@example.com"])
async def test_register_rejects_invalid_email(
    client: httpx.AsyncClient, email: str
) -> None:
    response = await register(client, email)

    body = assert_envelope(response, 422, "validation_error")
    assert body["detail"][0]["loc"] == ["body", "email"]


async def test_register_existing_address_mails_owner(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    existing = await make_user(db, "grace@example.com")

    response = await register(client, "grace@example.com", "another fine password")

    assert response.status_code == 202
    message = await last_mail(app, "grace@example.com")
    assert message.subject == "Someone tried to register with your address"
    assert message.links == []
    users = await fetch_all(app, select(User))
    assert [user.id for user in users] == [existing.user.id]
    assert users[0].password_hash == existing.user.password_hash
    assert "user.register_existing" in await actions(app)


async def test_verify_email_link_works_once(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await register(client, "grace@example.com")
    token = await link_token(app, "grace@example.com")

    first = await client.post("/v1/auth/verify-email", json={"token": token})
    second = await client.post("/v1/auth/verify-email", json={"token": token})

    assert first.status_code == 200
    assert_envelope(second, 400, "invalid_token")
    users = await fetch_all(app, select(User))
    assert users[0].email_verified_at is not None
    assert "user.email_verified" in await actions(app)


async def test_verify_email_rejects_unknown_token(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/auth/verify-email", json={"token": "nope"})

    assert_envelope(response, 400, "invalid_token")


async def test_verify_email_rejects_expired_token(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await register(client, "grace@example.com")
    token = await link_token(app, "grace@example.com")
    async with app.state.sessionmaker() as session:
        await session.execute(update(EmailToken).values(expires_at=utc_now()))
        await session.commit()

    response = await client.post("/v1/auth/verify-email", json={"token": token})

    assert_envelope(response, 400, "invalid_token")


async def test_unverified_user_cannot_sign_in(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    await make_user(db, "grace@example.com", PASSWORD, verified=False)

    response = await login(client, "grace@example.com", PASSWORD)

    assert_envelope(response, 403, "email_not_verified")


async def test_resend_replaces_verification_link(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await register(client, "grace@example.com")
    first = await link_token(app, "grace@example.com")

    response = await client.post(
        "/v1/auth/resend-verification", json={"email": "grace@example.com"}
    )
    second = await link_token(app, "grace@example.com")

    assert response.status_code == 202
    assert second != first
    old = await client.post("/v1/auth/verify-email", json={"token": first})
    new = await client.post("/v1/auth/verify-email", json={"token": second})
    assert_envelope(old, 400, "invalid_token")
    assert new.status_code == 200


async def test_resend_skips_verified_and_unknown(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    await make_user(db, "grace@example.com")

    for email in ("grace@example.com", "nobody@example.com"):
        response = await client.post(
            "/v1/auth/resend-verification", json={"email": email}
        )
        assert response.status_code == 202

    assert await mails_to(app, "grace@example.com") == []
    assert await mails_to(app, "nobody@example.com") == []
    assert (await actions(app)).count("user.verification_requested") == 2


async def test_password_reset_flow(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await make_user(db, "grace@example.com")
    tokens = await sign_in(client, "grace@example.com", account.password)

    requested = await client.post(
        "/v1/auth/request-password-reset", json={"email": "grace@example.com"}
    )
    token = await link_token(app, "grace@example.com")
    reset = await client.post(
        "/v1/auth/reset-password", json={"token": token, "password": "new and long"}
    )

    assert requested.status_code == 202
    assert reset.status_code == 200
    old_login = await login(client, "grace@example.com", account.password)
    assert_envelope(old_login, 401, "invalid_credentials")
    assert (await login(client, "grace@example.com", "new and long")).status_code == 200
    me = await client.get("/v1/auth/me", headers=bearer(tokens["access_token"]))
    assert_envelope(me, 401, "unauthorized")
    refreshed = await client.post(
        "/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert_envelope(refreshed, 401, "invalid_refresh_token")
    assert (await last_mail(app, "grace@example.com")).subject == (
        "Your password was changed"
    )
    assert "user.password_reset" in await actions(app)


async def test_reset_link_works_once(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    await make_user(db, "grace@example.com")
    await client.post(
        "/v1/auth/request-password-reset", json={"email": "grace@example.com"}
    )
    token = await link_token(app, "grace@example.com")

    first = await client.post(
        "/v1/auth/reset-password", json={"token": token, "password": "new and long"}
    )
    second = await client.post(
        "/v1/auth/reset-password", json={"token": token, "password": "newer and long"}
    )

    assert first.status_code == 200
    assert_envelope(second, 400, "invalid_token")


async def test_weak_reset_password_keeps_link(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    await make_user(db, "grace@example.com")
    await client.post(
        "/v1/auth/request-password-reset", json={"email": "grace@example.com"}
    )
    token = await link_token(app, "grace@example.com")

    weak = await client.post(
        "/v1/auth/reset-password", json={"token": token, "password": "letmein1"}
    )
    strong = await client.post(
        "/v1/auth/reset-password", json={"token": token, "password": "new and long"}
    )

    assert_envelope(weak, 422, "weak_password")
    assert strong.status_code == 200


async def test_reset_verifies_unverified_address(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    await make_user(db, "grace@example.com", verified=False)
    await client.post(
        "/v1/auth/request-password-reset", json={"email": "grace@example.com"}
    )
    token = await link_token(app, "grace@example.com")

    await client.post(
        "/v1/auth/reset-password", json={"token": token, "password": "new and long"}
    )

    assert (await login(client, "grace@example.com", "new and long")).status_code == 200


async def test_reset_unknown_address_sends_nothing(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    response = await client.post(
        "/v1/auth/request-password-reset", json={"email": "nobody@example.com"}
    )

    assert response.status_code == 202
    assert await mails_to(app, "nobody@example.com") == []


async def test_reset_rejects_unknown_token(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/auth/reset-password", json={"token": "nope", "password": "new and long"}
    )

    assert_envelope(response, 400, "invalid_token")


async def test_change_password_ends_other_sessions(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await make_user(db, "grace@example.com")
    this = await sign_in(client, "grace@example.com", account.password)
    other = await sign_in(client, "grace@example.com", account.password)

    response = await client.post(
        "/v1/auth/change-password",
        json={"current_password": account.password, "new_password": "new and long"},
        headers=bearer(this["access_token"]),
    )

    assert response.status_code == 200
    fresh = response.json()
    assert (
        await client.get("/v1/auth/me", headers=bearer(fresh["access_token"]))
    ).status_code == 200
    for stale in (this["access_token"], other["access_token"]):
        me = await client.get("/v1/auth/me", headers=bearer(stale))
        assert_envelope(me, 401, "unauthorized")
    other_refresh = await client.post(
        "/v1/auth/refresh", json={"refresh_token": other["refresh_token"]}
    )
    assert_envelope(other_refresh, 401, "invalid_refresh_token")
    fresh_refresh = await client.post(
        "/v1/auth/refresh", json={"refresh_token": fresh["refresh_token"]}
    )
    assert fresh_refresh.status_code == 200
    assert "user.password_changed" in await actions(app)


async def test_change_password_checks_current(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await make_user(db, "grace@example.com")
    tokens = await sign_in(client, "grace@example.com", account.password)

    wrong = await client.post(
        "/v1/auth/change-password",
        json={"current_password": "not it at all", "new_password": "new and long"},
        headers=bearer(tokens["access_token"]),
    )
    weak = await client.post(
        "/v1/auth/change-password",
        json={"current_password": account.password, "new_password": "password1"},
        headers=bearer(tokens["access_token"]),
    )
    anonymous = await client.post(
        "/v1/auth/change-password",
        json={"current_password": account.password, "new_password": "new and long"},
    )

    assert_envelope(wrong, 403, "invalid_password")
    assert_envelope(weak, 422, "weak_password")
    assert_envelope(anonymous, 401, "unauthorized")


async def test_account_mail_limited_per_address(
    client: httpx.AsyncClient, tmp_path, database_url: str
) -> None:
    from tests.conftest import make_settings
    from trw_platform.app import create_app

    app = create_app(
        make_settings(database_url, tmp_path, RATE_LIMIT_ACCOUNT_MAIL="2/hour")
    )
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        statuses = [
            (
                await http.post(
                    "/v1/auth/request-password-reset",
                    json={"email": "victim@example.com"},
                )
            ).status_code
            for _ in range(3)
        ]
        other = await http.post(
            "/v1/auth/request-password-reset", json={"email": "other@example.com"}
        )
        limited = await http.post(
            "/v1/auth/resend-verification", json={"email": "victim@example.com"}
        )
    await app.state.engine.dispose()

    assert statuses == [202, 202, 429]
    assert other.status_code == 202
    assert_envelope(limited, 429, "rate_limited")
    assert limited.headers["retry-after"].isdigit()
