"""Shared steps of the account tests: reading mail, signing in, raw table reads."""

import re
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from trw_platform.core.mail import MailMessage

TOKEN_IN_LINK = re.compile(r"[?&]token=([A-Za-z0-9_\-]+)")
CODE_IN_BODY = re.compile(r"^\s{4}(\d{8})$", re.MULTILINE)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def fetch_all(app: FastAPI, statement: Any) -> list[Any]:
    """Run a query in a fresh session, so nothing stale comes back."""
    async with app.state.sessionmaker() as session:
        return list(await session.scalars(statement))


async def mails_to(app: FastAPI, recipient: str) -> list[MailMessage]:
    return await fetch_all(
        app,
        select(MailMessage)
        .where(MailMessage.recipient == recipient)
        .order_by(MailMessage.created_at, MailMessage.id),
    )


async def last_mail(app: FastAPI, recipient: str) -> MailMessage:
    messages = await mails_to(app, recipient)
    assert messages, f"no mail was queued for {recipient}"
    return messages[-1]


async def link_token(app: FastAPI, recipient: str) -> str:
    message = await last_mail(app, recipient)
    match = TOKEN_IN_LINK.search(message.body)
    assert match, f"no token link in {message.subject!r}"
    assert message.links, "the link is not listed for the outbox"
    return match.group(1)


async def mailed_code(app: FastAPI, recipient: str) -> str:
    message = await last_mail(app, recipient)
    match = CODE_IN_BODY.search(message.body)
    assert match, f"no code in {message.subject!r}"
    return match.group(1)


async def login(
    client: httpx.AsyncClient, email: str, password: str, **kwargs: Any
) -> httpx.Response:
    return await client.post(
        "/v1/auth/login", json={"email": email, "password": password}, **kwargs
    )


async def sign_in(client: httpx.AsyncClient, email: str, password: str) -> dict:
    response = await login(client, email, password)
    assert response.status_code == 200, response.text
    return response.json()
