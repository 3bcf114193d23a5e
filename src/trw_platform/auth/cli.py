"""``trw-platform devices``: list, approve and deny device sign-in requests."""

from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from trw_platform.auth import accounts, device, device_approval
from trw_platform.auth.models import DeviceAuthorization
from trw_platform.auth.schemas import normalize_email
from trw_platform.core import audit
from trw_platform.core.cli_support import console, run_in_session
from trw_platform.core.errors import NotFound
from trw_platform.orgs import service as org_service

devices_app = typer.Typer(
    help="List, approve and deny device sign-in requests (trw-mcp auth login).",
    no_args_is_help=True,
)

UserCodeArgument = Annotated[
    str, typer.Argument(help="The code the device shows, such as BCDF-GHJK.")
]


@devices_app.command("list")
def list_devices() -> None:
    """List pending device sign-in requests."""
    pending: list[DeviceAuthorization] = run_in_session(device.list_pending)
    table = Table("user code", "client", "from", "asked", "expires")
    for request in pending:
        table.add_row(
            device.format_user_code(request.user_code),
            request.client_id,
            request.requester_ip or "-",
            request.created_at.strftime("%Y-%m-%d %H:%M UTC"),
            request.expires_at.strftime("%H:%M UTC"),
        )
    console.print(table)


@devices_app.command("approve")
def approve_device(
    user_code: UserCodeArgument,
    user: Annotated[str, typer.Option("--user", help="Email of the approving user.")],
    org: Annotated[str, typer.Option("--org", help="Organization id or slug.")],
) -> None:
    """Approve a request for one of the user's organizations."""

    async def work(session: AsyncSession) -> str:
        approver = await accounts.find_user(session, email=normalize_email(user))
        if approver is None:
            raise NotFound(f"No user has the address {user!r}")
        organization = await org_service.get_organization(session, ref=org)
        await device_approval.decide_as_user(
            session,
            user=approver,
            user_code=user_code,
            approve=True,
            organization_id=organization.id,
            origin=audit.Origin.console(),
        )
        return organization.name

    organization_name = run_in_session(work)
    console.print(
        f"Approved {device.format_user_code(device.normalize_user_code(user_code))}"
        f" for {organization_name!r}; the device receives its key at its next poll."
    )


@devices_app.command("deny")
def deny_device(user_code: UserCodeArgument) -> None:
    """Deny a request; the device stops polling with access_denied."""

    async def work(session: AsyncSession) -> None:
        await device.decide(
            session,
            user_code=user_code,
            approve=False,
            organization_id=None,
            user_id=None,
            origin=audit.Origin.console(),
        )

    run_in_session(work)
    console.print(f"Denied {user_code}.")
