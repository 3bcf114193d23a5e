"""The device approval page and the mail-link pages, driven over HTTP."""

import re
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from tests.auth.helpers import last_mail, link_token, mailed_code
from tests.factories import make_user
from trw_platform.auth import passwords

pytestmark = [pytest.mark.anyio, pytest.mark.accounts]

EMAIL = "ada@example.com"
GRANT = "urn:ietf:params:oauth:grant-type:device_code"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    passwords.set_hash_cost(time_cost=1, memory_kib=1024)
    yield
    passwords.set_hash_cost(time_cost=3, memory_kib=65536)


def csrf_of(response: httpx.Response) -> str:
    match = CSRF.search(response.text)
    assert match, "the page has no CSRF field"
    return match.group(1)


async def device_code(client: httpx.AsyncClient) -> dict:
    response = await client.post("/v1/auth/device/code", json={"client_id": "trw-cli"})
    return response.json()


async def poll(client: httpx.AsyncClient, code: dict) -> httpx.Response:
    return await client.post(
        "/v1/auth/device/token",
        json={
            "client_id": "trw-cli",
            "device_code": code["device_code"],
            "grant_type": GRANT,
        },
    )


async def sign_in_on_page(
    client: httpx.AsyncClient, user_code: str, password: str
) -> httpx.Response:
    page = await client.get("/device", params={"user_code": user_code})
    return await client.post(
        "/device/login",
        data={
            "email": EMAIL,
            "password": password,
            "user_code": user_code,
            "csrf_token": csrf_of(page),
        },
    )


async def test_page_signs_in_and_approves(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await make_user(db, EMAIL)
    code = await device_code(client)

    page = await client.get("/device", params={"user_code": code["user_code"]})
    signed_in = await sign_in_on_page(client, code["user_code"], account.password)
    confirm = await client.get(signed_in.headers["location"])
    decided = await client.post(
        "/device/decision",
        data={
            "user_code": code["user_code"],
            "organization_id": account.organization.id,
            "decision": "approve",
            "csrf_token": csrf_of(confirm),
        },
    )
    token = await poll(client, code)

    assert page.status_code == 200
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert 'name="viewport"' in page.text
    assert "trw_csrf" in page.headers["set-cookie"]
    assert signed_in.status_code == 303
    assert "HttpOnly" in signed_in.headers["set-cookie"]
    assert code["user_code"] in confirm.text
    assert "trw-cli" in confirm.text
    assert account.organization.name in confirm.text
    assert decided.status_code == 200
    assert "Device approved" in decided.text
    assert token.json()["api_key"].startswith("trw_dk_")


async def test_page_completes_two_factor(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await make_user(db, EMAIL)
    access = (
        await client.post(
            "/v1/auth/login", json={"email": EMAIL, "password": account.password}
        )
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {access}"}
    await client.post("/v1/auth/2fa/enable", headers=headers)
    await client.post(
        "/v1/auth/2fa/confirm-enable",
        json={"code": await mailed_code(app, EMAIL)},
        headers=headers,
    )
    code = await device_code(client)

    form = await sign_in_on_page(client, code["user_code"], account.password)
    wrong = await client.post(
        "/device/two-factor",
        data={
            "code": "00000000",
            "user_code": code["user_code"],
            "csrf_token": csrf_of(form),
        },
    )
    right = await client.post(
        "/device/two-factor",
        data={
            "code": await mailed_code(app, EMAIL),
            "user_code": code["user_code"],
            "csrf_token": csrf_of(form),
        },
    )

    assert form.status_code == 200
    assert "We mailed you a code" in form.text
    assert wrong.status_code == 400
    assert "wrong" in wrong.text
    assert right.status_code == 303
    confirm = await client.get(right.headers["location"])
    assert "Approve this sign-in?" in confirm.text


async def test_page_denies(client: httpx.AsyncClient, db: AsyncSession) -> None:
    account = await make_user(db, EMAIL)
    code = await device_code(client)
    signed_in = await sign_in_on_page(client, code["user_code"], account.password)
    confirm = await client.get(signed_in.headers["location"])

    decided = await client.post(
        "/device/decision",
        data={
            "user_code": code["user_code"],
            "decision": "deny",
            "csrf_token": csrf_of(confirm),
        },
    )

    assert "Device denied" in decided.text
    assert (await poll(client, code)).json()["error"] == "access_denied"


async def test_page_rejects_missing_csrf(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await make_user(db, EMAIL)
    await client.get("/device")

    no_token = await client.post(
        "/device/login",
        data={"email": EMAIL, "password": account.password, "csrf_token": "forged"},
    )
    page = await client.get("/device")
    cross_site = await client.post(
        "/device/login",
        data={
            "email": EMAIL,
            "password": account.password,
            "csrf_token": csrf_of(page),
        },
        headers={"Origin": "https://evil.example"},
    )

    assert no_token.status_code == 403
    assert cross_site.status_code == 403
    assert "trw_session" not in no_token.headers.get("set-cookie", "")


async def test_page_shows_login_errors(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    await make_user(db, EMAIL)

    wrong = await sign_in_on_page(client, "", "not the password")

    assert wrong.status_code == 401
    assert "invalid email or password" in wrong.text


async def test_page_reports_unknown_code(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    account = await make_user(db, EMAIL)
    await sign_in_on_page(client, "", account.password)

    response = await client.get("/device", params={"user_code": "BCDF-GHJK"})

    assert response.status_code == 404
    assert "No pending sign-in request" in response.text


async def test_verify_email_page(app: FastAPI, client: httpx.AsyncClient) -> None:
    await client.post(
        "/v1/auth/register", json={"email": EMAIL, "password": "long enough pw"}
    )
    link = (await last_mail(app, EMAIL)).links[0]

    form = await client.get(link.removeprefix("http://testserver"))
    done = await client.post(
        "/verify-email",
        data={"token": await link_token(app, EMAIL), "csrf_token": csrf_of(form)},
    )

    assert form.status_code == 200
    assert form.headers["referrer-policy"] == "same-origin"
    assert "Your address is verified" in done.text


async def test_reset_password_page(
    app: FastAPI, client: httpx.AsyncClient, db: AsyncSession
) -> None:
    await make_user(db, EMAIL)
    await client.post("/v1/auth/request-password-reset", json={"email": EMAIL})
    token = await link_token(app, EMAIL)

    form = await client.get("/reset-password", params={"token": token})
    weak = await client.post(
        "/reset-password",
        data={"token": token, "password": "password1", "csrf_token": csrf_of(form)},
    )
    done = await client.post(
        "/reset-password",
        data={
            "token": token,
            "password": "brand new secret",
            "csrf_token": csrf_of(form),
        },
    )
    login = await client.post(
        "/v1/auth/login", json={"email": EMAIL, "password": "brand new secret"}
    )

    assert weak.status_code == 422
    assert "common passwords" in weak.text
    assert "Your password was changed" in done.text
    assert login.status_code == 200


async def test_stylesheet_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/static/web.css")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
