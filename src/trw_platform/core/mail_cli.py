"""``trw-platform mail``: read the outbox, for servers without a mail server."""

from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from trw_platform.core.cli_support import console, run_in_session
from trw_platform.core.errors import NotFound
from trw_platform.core.mail import MailMessage

mail_app = typer.Typer(
    help="Read the mail the server queued (the outbox when no SMTP is set).",
    no_args_is_help=True,
)


@mail_app.command("list")
def list_mail(
    limit: Annotated[
        int, typer.Option(min=1, max=1000, help="Number of newest messages shown.")
    ] = 20,
) -> None:
    """List the newest messages with their links, newest first."""

    async def work(session: AsyncSession) -> list[MailMessage]:
        result = await session.scalars(
            select(MailMessage).order_by(MailMessage.created_at.desc()).limit(limit)
        )
        return list(result)

    table = Table("id", "created", "to", "subject", "status", "links")
    for message in run_in_session(work):
        table.add_row(
            message.id,
            message.created_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
            message.recipient,
            message.subject,
            message.status,
            "\n".join(message.links) or "-",
        )
    console.print(table)


@mail_app.command("show")
def show_mail(
    message_id: Annotated[str, typer.Argument(help="Id of the message, from 'list'.")],
) -> None:
    """Print one message; bodies sent through SMTP are no longer stored."""

    async def work(session: AsyncSession) -> MailMessage:
        message = await session.get(MailMessage, message_id)
        if message is None:
            raise NotFound(f"No message has the id {message_id!r}")
        return message

    message = run_in_session(work)
    console.print(f"To: {message.recipient}", highlight=False)
    console.print(f"Subject: {message.subject}", highlight=False)
    console.print(f"Status: {message.status}\n", highlight=False)
    console.print(message.body or "(body removed after delivery)", highlight=False)
