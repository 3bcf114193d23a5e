"""A real browser signs in with 2FA and approves a device code on the live page.

Drives Debian's Chromium (``/usr/bin/chromium``, installed by ``make test``)
through Playwright against a uvicorn server on 127.0.0.1, on a phone-sized
viewport.
"""

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import sync_playwright
from sqlalchemy import select

from tests.auth.helpers import CODE_IN_BODY
from tests.conftest import empty_tables, make_settings
from tests.factories import make_user
from trw_platform.app import create_app
from trw_platform.auth import passwords
from trw_platform.core.db import create_engine, create_sessionmaker
from trw_platform.core.mail import MailMessage

pytestmark = pytest.mark.accounts

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
EMAIL = "browser@example.com"
PASSWORD = "browser test password"
GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def arrange_user(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            await make_user(session, EMAIL, PASSWORD)
    finally:
        await engine.dispose()


async def newest_code(database_url: str) -> str:
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            message = await session.scalar(
                select(MailMessage)
                .where(MailMessage.recipient == EMAIL)
                .order_by(MailMessage.created_at.desc())
                .limit(1)
            )
    finally:
        await engine.dispose()
    assert message is not None
    match = CODE_IN_BODY.search(message.body)
    assert match, f"no code in {message.subject!r}"
    return match.group(1)


async def empty_and_release(app: FastAPI) -> None:
    # The pool's connections belong to this event loop, not the server's.
    await empty_tables(app)
    await app.state.engine.dispose()


def code_from_outbox(database_url: str) -> str:
    # Playwright's sync API keeps an event loop running in this thread.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, newest_code(database_url)).result()


@pytest.fixture
def live_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    passwords.set_hash_cost(time_cost=1, memory_kib=1024)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = create_app(make_settings(database_url, tmp_path, PUBLIC_URL=url))
    asyncio.run(empty_and_release(app))
    asyncio.run(arrange_user(database_url))
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start within 20 s"
        time.sleep(0.05)
    yield url
    server.should_exit = True
    thread.join(timeout=10)
    passwords.set_hash_cost(time_cost=3, memory_kib=65536)


def turn_on_email_2fa(http: httpx.Client, database_url: str) -> None:
    login = http.post("/v1/auth/login", json={"email": EMAIL, "password": PASSWORD})
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    assert http.post("/v1/auth/2fa/enable", headers=headers).status_code == 200
    code = code_from_outbox(database_url)
    confirmed = http.post(
        "/v1/auth/2fa/confirm-enable", json={"code": code}, headers=headers
    )
    assert confirmed.status_code == 200


def test_browser_approves_device_with_2fa(
    live_url: str, database_url: str, tmp_path: Path
) -> None:
    assert CHROMIUM.exists(), "Chromium is missing: run 'make test' to install it"
    with httpx.Client(base_url=live_url, timeout=30) as http:
        turn_on_email_2fa(http, database_url)
        code = http.post("/v1/auth/device/code", json={"client_id": "trw-cli"}).json()

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
            )
            page = browser.new_page(viewport={"width": 390, "height": 844})
            page.goto(code["verification_uri_complete"])
            assert page.text_content("#user-code") == code["user_code"]
            page.fill("#email", EMAIL)
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")

            page.wait_for_selector("#code")
            page.fill("#code", code_from_outbox(database_url))
            page.click("button[type=submit]")

            page.wait_for_selector("#client-id")
            assert page.text_content("#client-id") == "trw-cli"
            assert page.text_content("#user-code") == code["user_code"]
            page.screenshot(path=str(tmp_path / "confirm.png"), full_page=True)
            page.click("button[value=approve]")
            page.wait_for_selector("#result")
            result = page.text_content("#result") or ""
            browser.close()

        token = http.post(
            "/v1/auth/device/token",
            json={
                "client_id": "trw-cli",
                "device_code": code["device_code"],
                "grant_type": GRANT,
            },
        )

    assert "trw-cli is signed in" in result
    assert token.status_code == 200, token.text
    assert token.json()["api_key"].startswith("trw_dk_")
    assert token.json()["user_email"] == EMAIL
