"""Outgoing mail: a transactional outbox table and the backends that deliver it.

``queue_mail`` adds a message to the caller's transaction, so mail goes out
only when the request's changes are committed. ``core.mail_delivery`` then
hands each queued message to one backend:

- ``SmtpMailer`` (``TRW_SERVER_SMTP_URL`` set) sends it through a mail server,
  with STARTTLS or TLS, and blanks the stored body once it is sent.
- ``OutboxMailer`` (the default) keeps it in the table, readable with
  ``trw-platform mail list``, and logs its links so that someone running the
  server locally can verify an address without a mail server.
"""

import ssl
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol
from urllib.parse import unquote, urlsplit

import aiosmtplib
import structlog
from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from trw_platform.core.db import Base, IdMixin, JSONType, UTCDateTime, utc_now
from trw_platform.core.settings import Settings

log = structlog.get_logger(__name__)

QUEUED = "queued"
SENT = "sent"
FAILED = "failed"
SESSION_FLAG = "mail_queued"
SMTP_TIMEOUT_SECONDS = 30

_SMTP_PORTS = {"smtp": 587, "smtp+starttls": 587, "smtps": 465}


class MailMessage(IdMixin, Base):
    __tablename__ = "mail_messages"
    __table_args__ = (
        Index("ix_mail_messages_status_next_attempt", "status", "next_attempt_at"),
    )

    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text())
    links: Mapped[list[str]] = mapped_column(JSONType, default=list)
    status: Mapped[str] = mapped_column(String(16), default=QUEUED)
    backend: Mapped[str | None] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer(), default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(500))


async def queue_mail(
    session: AsyncSession,
    *,
    recipient: str,
    subject: str,
    body: str,
    links: list[str] | None = None,
) -> MailMessage:
    """Add a message to the transaction; it is delivered after the commit.

    ``links`` lists the URLs in the body that the outbox backend logs.
    """
    message = MailMessage(
        recipient=recipient, subject=subject, body=body, links=links or []
    )
    session.add(message)
    await session.flush()
    session.info[SESSION_FLAG] = True
    return message


class Mailer(Protocol):
    """A delivery backend; ``send`` raises on failure so the message is retried."""

    name: str
    keeps_body: bool

    async def send(self, message: MailMessage) -> None: ...


class OutboxMailer:
    name = "outbox"
    keeps_body = True

    async def send(self, message: MailMessage) -> None:
        # NOTE: links are logged on purpose: with no mail server they are how a
        # local user verifies an address or resets a password. Codes stay in
        # the body, which is never logged.
        for link in message.links:
            log.info("mail.outbox_link", message_id=message.id, link=link)
        log.info("mail.stored_in_outbox", message_id=message.id)


@dataclass(frozen=True)
class SmtpTarget:
    hostname: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool
    start_tls: bool | None


def parse_smtp_url(url: str) -> SmtpTarget:
    """Split an smtp://, smtp+starttls:// or smtps:// URL; raises ValueError."""
    parts = urlsplit(url)
    if parts.scheme not in _SMTP_PORTS or not parts.hostname:
        raise ValueError(
            "TRW_SERVER_SMTP_URL must look like smtp://host:587, "
            "smtp+starttls://host:587 or smtps://host:465"
        )
    return SmtpTarget(
        hostname=parts.hostname,
        port=parts.port or _SMTP_PORTS[parts.scheme],
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        use_tls=parts.scheme == "smtps",
        # None lets aiosmtplib upgrade whenever the server offers STARTTLS.
        start_tls=True if parts.scheme == "smtp+starttls" else None,
    )


class SmtpMailer:
    name = "smtp"
    keeps_body = False

    def __init__(
        self, url: str, sender: str, tls_context: ssl.SSLContext | None = None
    ) -> None:
        self.target = parse_smtp_url(url)
        self.sender = sender
        self.tls_context = tls_context

    async def send(self, message: MailMessage) -> None:
        target = self.target
        await aiosmtplib.send(
            self._render(message),
            hostname=target.hostname,
            port=target.port,
            username=target.username,
            password=target.password,
            use_tls=target.use_tls,
            start_tls=False if target.use_tls else target.start_tls,
            tls_context=self.tls_context,
            timeout=SMTP_TIMEOUT_SECONDS,
        )

    def _render(self, message: MailMessage) -> EmailMessage:
        email = EmailMessage()
        email["From"] = self.sender
        email["To"] = message.recipient
        email["Subject"] = message.subject
        email["Date"] = formatdate(localtime=False)
        email["Message-ID"] = make_msgid(domain=self.target.hostname)
        email.set_content(message.body)
        return email


def create_mailer(settings: Settings) -> Mailer:
    if settings.SMTP_URL:
        return SmtpMailer(settings.SMTP_URL, settings.MAIL_FROM)
    return OutboxMailer()
