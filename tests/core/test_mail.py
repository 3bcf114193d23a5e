"""Mail: the outbox table, SMTP delivery to a real server on loopback, retries."""

import logging
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import anyio
import httpx
import pytest
from aiosmtpd.controller import Controller
from fastapi import FastAPI
from sqlalchemy import select, update
from typer.testing import CliRunner

from tests.conftest import make_settings
from trw_platform.app import create_app
from trw_platform.cli import app as cli_app
from trw_platform.core.db import utc_now
from trw_platform.core.mail import (
    MailMessage,
    OutboxMailer,
    SmtpMailer,
    parse_smtp_url,
    queue_mail,
)
from trw_platform.core.mail_delivery import MAX_ATTEMPTS, MailDelivery
from trw_platform.core.settings import get_settings

pytestmark = pytest.mark.anyio

WAIT_SECONDS = 5


class Inbox:
    """aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.received = threading.Event()

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        self.received.set()
        return "250 OK"

    async def wait(self) -> None:
        """Wait for a first message; the server runs in its own thread."""
        arrived = await anyio.to_thread.run_sync(self.received.wait, WAIT_SECONDS)
        assert arrived, f"no mail arrived within {WAIT_SECONDS} s"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*map(str, certificate))
    return context


def client_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate[0]))


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


async def queue_one(app: FastAPI, body: str = "Code: 12345678") -> str:
    async with app.state.sessionmaker() as session:
        message = await queue_mail(
            session,
            recipient="ada@example.com",
            subject="Hello",
            body=body,
            links=["http://testserver/verify-email?token=abc"],
        )
        await session.commit()
        return message.id


async def stored(app: FastAPI, message_id: str) -> MailMessage:
    async with app.state.sessionmaker() as session:
        return await session.get_one(MailMessage, message_id)


async def test_smtp_delivers_and_blanks_body(
    app: FastAPI, smtp_server: tuple[Inbox, int]
) -> None:
    inbox, port = smtp_server
    mailer = SmtpMailer(f"smtp://127.0.0.1:{port}", "trw <noreply@example.com>")
    message_id = await queue_one(app)

    sent = await MailDelivery(app.state.sessionmaker, mailer).deliver_due()

    assert sent == 1
    assert len(inbox.messages) == 1
    received = inbox.messages[0]
    assert received["To"] == "ada@example.com"
    assert received["Subject"] == "Hello"
    assert received["From"] == "trw <noreply@example.com>"
    assert "12345678" in received.get_payload()
    row = await stored(app, message_id)
    assert row.status == "sent"
    assert row.backend == "smtp"
    assert row.body == ""
    assert row.sent_at is not None


async def test_smtp_with_required_starttls(
    app: FastAPI, certificate: tuple[Path, Path]
) -> None:
    inbox, port = Inbox(), free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=server_context(certificate),
        require_starttls=True,
    )
    controller.start()
    try:
        mailer = SmtpMailer(
            f"smtp+starttls://127.0.0.1:{port}",
            "noreply@example.com",
            tls_context=client_context(certificate),
        )
        await queue_one(app)
        sent = await MailDelivery(app.state.sessionmaker, mailer).deliver_due()
    finally:
        controller.stop()

    assert sent == 1
    assert len(inbox.messages) == 1


async def test_smtps_implicit_tls(app: FastAPI, certificate: tuple[Path, Path]) -> None:
    inbox, port = Inbox(), free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        ssl_context=server_context(certificate),
    )
    controller.start()
    try:
        mailer = SmtpMailer(
            f"smtps://127.0.0.1:{port}",
            "noreply@example.com",
            tls_context=client_context(certificate),
        )
        await queue_one(app)
        sent = await MailDelivery(app.state.sessionmaker, mailer).deliver_due()
    finally:
        controller.stop()

    assert sent == 1
    assert len(inbox.messages) == 1


async def test_failed_send_is_retried(
    app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    mailer = SmtpMailer(f"smtp://127.0.0.1:{port}", "noreply@example.com")
    delivery = MailDelivery(app.state.sessionmaker, mailer)
    message_id = await queue_one(app)

    with caplog.at_level(logging.WARNING):
        assert await delivery.deliver_due() == 0
    failed = await stored(app, message_id)
    assert failed.status == "queued"
    assert failed.attempts == 1
    assert failed.next_attempt_at > utc_now() + timedelta(seconds=20)
    assert failed.last_error
    assert "ada@example.com" not in caplog.text
    assert await delivery.deliver_due() == 0

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        async with app.state.sessionmaker() as session:
            await session.execute(update(MailMessage).values(next_attempt_at=utc_now()))
            await session.commit()
        assert await delivery.deliver_due() == 1
    finally:
        controller.stop()
    assert (await stored(app, message_id)).status == "sent"
    assert len(inbox.messages) == 1


async def test_delivery_gives_up_after_max_attempts(app: FastAPI) -> None:
    mailer = SmtpMailer(f"smtp://127.0.0.1:{free_port()}", "noreply@example.com")
    delivery = MailDelivery(app.state.sessionmaker, mailer)
    message_id = await queue_one(app)

    for _ in range(MAX_ATTEMPTS):
        async with app.state.sessionmaker() as session:
            await session.execute(update(MailMessage).values(next_attempt_at=utc_now()))
            await session.commit()
        await delivery.deliver_due()

    row = await stored(app, message_id)
    assert row.status == "failed"
    assert row.attempts == MAX_ATTEMPTS


async def test_outbox_logs_links_not_body(
    app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    message_id = await queue_one(app, body="Your code: 87654321")

    with caplog.at_level(logging.INFO):
        sent = await MailDelivery(app.state.sessionmaker, OutboxMailer()).deliver_due()

    assert sent == 1
    assert "http://testserver/verify-email?token=abc" in caplog.text
    assert "87654321" not in caplog.text
    assert "ada@example.com" not in caplog.text
    row = await stored(app, message_id)
    assert row.status == "sent"
    assert row.backend == "outbox"
    assert row.body == "Your code: 87654321"


async def test_commit_wakes_delivery_and_rollback_sends_nothing(
    app: FastAPI, smtp_server: tuple[Inbox, int]
) -> None:
    inbox, port = smtp_server
    mailer = SmtpMailer(f"smtp://127.0.0.1:{port}", "noreply@example.com")
    delivery = MailDelivery(app.state.sessionmaker, mailer, poll_seconds=60)
    await delivery.start()
    try:
        async with app.state.sessionmaker() as session:
            await queue_mail(
                session, recipient="gone@example.com", subject="x", body="x"
            )
            await session.rollback()
        await queue_one(app)
        await inbox.wait()
    finally:
        await delivery.stop()

    assert [m["To"] for m in inbox.messages] == ["ada@example.com"]
    async with app.state.sessionmaker() as session:
        rows = list(await session.scalars(select(MailMessage)))
    assert [row.recipient for row in rows] == ["ada@example.com"]


async def test_register_mail_reaches_smtp_server(
    database_url: str, tmp_path: Path, smtp_server: tuple[Inbox, int]
) -> None:
    from trw_platform.auth import passwords

    passwords.set_hash_cost(time_cost=1, memory_kib=1024)
    inbox, port = smtp_server
    settings = make_settings(
        database_url,
        tmp_path,
        SMTP_URL=f"smtp://127.0.0.1:{port}",
        PUBLIC_URL="http://127.0.0.1:8000",
    )
    application = create_app(settings)
    transport = httpx.ASGITransport(app=application)
    try:
        async with (
            application.router.lifespan_context(application),
            httpx.AsyncClient(transport=transport, base_url="http://t") as http,
        ):
            response = await http.post(
                "/v1/auth/register",
                json={"email": "mailtest@example.com", "password": "long enough pw"},
            )
            await inbox.wait()
    finally:
        passwords.set_hash_cost(time_cost=3, memory_kib=65536)
        await application.state.engine.dispose()

    assert response.status_code == 202
    received = inbox.messages[0]
    assert received["To"] == "mailtest@example.com"
    assert "http://127.0.0.1:8000/verify-email?token=" in received.get_payload()


@pytest.mark.parametrize(
    ("url", "host", "port", "tls", "starttls", "user"),
    [
        ("smtp://mail.example.com", "mail.example.com", 587, False, None, None),
        ("smtp+starttls://u%40x:p@h:2525", "h", 2525, False, True, "u@x"),
        ("smtps://h", "h", 465, True, None, None),
    ],
)
def test_parse_smtp_url(
    url: str, host: str, port: int, tls: bool, starttls: bool | None, user: str | None
) -> None:
    target = parse_smtp_url(url)

    assert target.hostname == host
    assert target.port == port
    assert target.use_tls is tls
    assert target.start_tls is starttls
    assert target.username == user


@pytest.mark.parametrize("url", ["http://h", "smtp://", "mail.example.com"])
def test_parse_smtp_url_rejects_others(url: str) -> None:
    with pytest.raises(ValueError, match="TRW_SERVER_SMTP_URL"):
        parse_smtp_url(url)


async def test_mail_cli_lists_and_shows(
    app: FastAPI, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    message_id = await queue_one(app)
    monkeypatch.setenv("TRW_SERVER_DATABASE_URL", database_url)
    monkeypatch.setenv("TRW_SERVER_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        listed = await anyio.to_thread.run_sync(
            lambda: runner.invoke(cli_app, ["mail", "list"])
        )
        shown = await anyio.to_thread.run_sync(
            lambda: runner.invoke(cli_app, ["mail", "show", message_id])
        )
        missing = await anyio.to_thread.run_sync(
            lambda: runner.invoke(cli_app, ["mail", "show", "nope"])
        )
    finally:
        get_settings.cache_clear()

    assert listed.exit_code == 0, listed.output
    assert "ada@example.com" in listed.output
    assert "http://testserver/verify-email?token=abc" in listed.output
    assert shown.exit_code == 0
    assert "Code: 12345678" in shown.output
    assert missing.exit_code == 1
