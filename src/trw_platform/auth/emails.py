"""The account mails: rendered from ``mail_templates/`` and queued in the outbox."""

from jinja2 import Environment, PackageLoader, StrictUndefined
from sqlalchemy.ext.asyncio import AsyncSession

from trw_platform.core.mail import queue_mail

_templates = Environment(
    loader=PackageLoader("trw_platform.auth", "mail_templates"),
    autoescape=False,
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)

CODE_PURPOSES = {
    "login": "to finish signing in",
    "enable": "to turn on two-factor authentication",
    "disable": "to turn off two-factor authentication",
}


async def _queue(
    session: AsyncSession,
    *,
    recipient: str,
    subject: str,
    template: str,
    links: list[str] | None = None,
    **context: object,
) -> None:
    body = _templates.get_template(f"{template}.txt").render(**context)
    await queue_mail(
        session, recipient=recipient, subject=subject, body=body, links=links
    )


async def send_verification(
    session: AsyncSession, *, recipient: str, link: str, hours: int
) -> None:
    await _queue(
        session,
        recipient=recipient,
        subject="Confirm your email address",
        template="verify_email",
        links=[link],
        link=link,
        hours=hours,
    )


async def send_already_registered(session: AsyncSession, *, recipient: str) -> None:
    await _queue(
        session,
        recipient=recipient,
        subject="Someone tried to register with your address",
        template="already_registered",
    )


async def send_password_reset(
    session: AsyncSession, *, recipient: str, link: str, minutes: int
) -> None:
    await _queue(
        session,
        recipient=recipient,
        subject="Reset your password",
        template="reset_password",
        links=[link],
        link=link,
        minutes=minutes,
    )


async def send_password_changed(session: AsyncSession, *, recipient: str) -> None:
    await _queue(
        session,
        recipient=recipient,
        subject="Your password was changed",
        template="password_changed",
    )


async def send_two_factor_code(
    session: AsyncSession, *, recipient: str, code: str, purpose: str, minutes: int
) -> None:
    await _queue(
        session,
        recipient=recipient,
        subject="Your sign-in code",
        template="two_factor_code",
        code=code,
        purpose=CODE_PURPOSES[purpose],
        minutes=minutes,
    )


async def send_two_factor_disabled(session: AsyncSession, *, recipient: str) -> None:
    await _queue(
        session,
        recipient=recipient,
        subject="Two-factor authentication was turned off",
        template="two_factor_disabled",
    )
