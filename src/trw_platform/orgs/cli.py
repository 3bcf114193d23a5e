"""``trw-platform orgs`` and ``trw-platform keys``: operator commands."""

from datetime import datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from trw_platform.core.cli_support import console, error_console, run_in_session
from trw_platform.core.db import utc_now
from trw_platform.orgs import scopes, service
from trw_platform.orgs.models import ApiKey, Organization

orgs_app = typer.Typer(help="Create and list organizations.", no_args_is_help=True)
keys_app = typer.Typer(
    help="Create, list and revoke platform API keys.", no_args_is_help=True
)

OrgOption = Annotated[str, typer.Option("--org", help="Organization id or slug.")]


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "-"


@orgs_app.command("create")
def create_org(
    name: Annotated[str, typer.Argument(help="Display name of the organization.")],
    slug: Annotated[
        str | None,
        typer.Option(help="URL-safe short name; derived from the name if omitted."),
    ] = None,
) -> None:
    """Create an organization."""
    organization = run_in_session(
        lambda session: service.create_organization(session, name=name, slug=slug)
    )
    console.print(f"Created organization {organization.name!r}")
    console.print(f"  id:   {organization.id}")
    console.print(f"  slug: {organization.slug}")


@orgs_app.command("list")
def list_orgs() -> None:
    """List every organization."""
    organizations: list[Organization] = run_in_session(service.list_organizations)
    table = Table("id", "slug", "name", "created")
    for organization in organizations:
        table.add_row(
            organization.id,
            organization.slug,
            organization.name,
            _when(organization.created_at),
        )
    console.print(table)


@keys_app.command("create")
def create_key(
    org: OrgOption,
    name: Annotated[str, typer.Option(help="Label shown in key listings.")] = "cli",
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", help="Scope to grant; repeat for several. Default: *."),
    ] = None,
    expires_in_days: Annotated[
        int | None,
        typer.Option(
            min=1, max=36500, help="Days until the key expires; default never."
        ),
    ] = None,
) -> None:
    """Create an API key and print it once."""
    granted = scope or [scopes.ALL]
    unknown = sorted(set(granted) - scopes.KNOWN_SCOPES)
    if unknown:
        error_console.print(
            f"[red]error:[/red] unknown scope {', '.join(unknown)};"
            f" known scopes: {', '.join(sorted(scopes.KNOWN_SCOPES))}"
        )
        raise typer.Exit(2)
    expires_at = (
        utc_now() + timedelta(days=expires_in_days) if expires_in_days else None
    )

    async def work(session: AsyncSession) -> tuple[ApiKey, str]:
        organization = await service.get_organization(session, ref=org)
        return await service.create_api_key(
            session,
            organization_id=organization.id,
            name=name,
            scopes=granted,
            expires_at=expires_at,
        )

    api_key, raw_key = run_in_session(work)
    console.print(
        f"Created API key {api_key.id} ({', '.join(api_key.scopes)})."
        " It is shown only once:"
    )
    console.print(raw_key, soft_wrap=True, highlight=False)


@keys_app.command("list")
def list_keys(org: OrgOption) -> None:
    """List an organization's API keys (hints only, never the keys)."""

    async def work(session: AsyncSession) -> list[ApiKey]:
        organization = await service.get_organization(session, ref=org)
        return await service.list_api_keys(session, organization_id=organization.id)

    table = Table(
        "id", "name", "hint", "scopes", "created", "expires", "revoked", "last used"
    )
    for api_key in run_in_session(work):
        table.add_row(
            api_key.id,
            api_key.name,
            api_key.hint,
            ",".join(api_key.scopes),
            _when(api_key.created_at),
            _when(api_key.expires_at),
            _when(api_key.revoked_at),
            _when(api_key.last_used_at),
        )
    console.print(table)


@keys_app.command("revoke")
def revoke_key(
    key_id: Annotated[str, typer.Argument(help="Id of the key, from 'keys list'.")],
) -> None:
    """Revoke an API key; its JWTs stop working too."""
    started = utc_now()
    api_key = run_in_session(
        lambda session: service.revoke_api_key(session, key_id=key_id)
    )
    revoked_at = api_key.revoked_at
    if revoked_at is not None and revoked_at < started:
        console.print(
            f"API key {api_key.id} was already revoked at {_when(revoked_at)}"
        )
        return
    console.print(f"Revoked API key {api_key.id} at {_when(revoked_at)}")
