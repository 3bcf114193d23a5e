"""``trw-platform learnings``: operator commands for the learnings store."""

from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from trw_platform.core.cli_support import console, error_console, run_in_session
from trw_platform.learnings.embeddings import shared_embedder
from trw_platform.learnings.reembed import EmbedderUnavailable, reembed
from trw_platform.orgs import service as org_service

learnings_app = typer.Typer(help="Maintain the shared learnings.", no_args_is_help=True)


@learnings_app.command("reembed")
def reembed_learnings(
    org: Annotated[
        str | None,
        typer.Option("--org", help="Organization id or slug; default every one."),
    ] = None,
    every_learning: Annotated[
        bool,
        typer.Option(
            "--all", help="Embed every learning, also those with a current vector."
        ),
    ] = False,
) -> None:
    """Embed learnings stored while embeddings were off, for semantic search."""

    async def work(session: AsyncSession) -> int:
        organization_id = None
        if org is not None:
            organization_id = (await org_service.get_organization(session, ref=org)).id
        return await reembed(
            session,
            embedder=shared_embedder(),
            organization_id=organization_id,
            every_learning=every_learning,
            progress=lambda done: console.print(f"embedded {done}"),
        )

    try:
        count = run_in_session(work)
    except EmbedderUnavailable as exc:
        error_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"Embedded {count} learnings.")
