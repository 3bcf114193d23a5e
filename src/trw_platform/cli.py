"""The ``trw-platform`` command."""

import os
import socket
from typing import Annotated, get_args, get_origin
from urllib.parse import urlsplit

import typer
import uvicorn
from alembic.util import CommandError
from pydantic import ValidationError
from pydantic.fields import FieldInfo

from trw_platform import __version__
from trw_platform.auth.cli import devices_app
from trw_platform.core import migrate as migrations
from trw_platform.core.cli_support import console, error_console, run_in_session
from trw_platform.core.logging import configure_logging
from trw_platform.core.mail_cli import mail_app
from trw_platform.core.settings import (
    Settings,
    get_settings,
    prepare_data_dir,
    protect_database_file,
)
from trw_platform.learnings.cli import learnings_app
from trw_platform.orgs.bootstrap import create_first_org_if_empty, needs_trusted_host
from trw_platform.orgs.cli import keys_app, orgs_app

app = typer.Typer(
    help="Self-hostable server for the TRW platform API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(orgs_app, name="orgs")
app.add_typer(keys_app, name="keys")
app.add_typer(devices_app, name="devices")
app.add_typer(mail_app, name="mail")
app.add_typer(learnings_app, name="learnings")


def _settings_help() -> str:
    lines = ["Settings, read from the environment:\n\n"]
    for name, field in Settings.model_fields.items():
        default = (
            field.default.get_secret_value() if name == "SECRET_KEY" else field.default
        )
        lines.append(
            f"TRW_SERVER_{name} (default {default!s:.40}{_allowed(field)}):"
            f" {field.description}\n\n"
        )
    return "".join(lines)


def _allowed(field: FieldInfo) -> str:
    """Describe the values a setting accepts: its choices or its range."""
    choices = get_args(field.annotation) if get_origin(field.annotation) else ()
    if choices and all(isinstance(choice, str) for choice in choices):
        return "; one of " + ", ".join(choices)
    bounds = [
        f"{label} {getattr(rule, attr)}"
        for rule in field.metadata
        for attr, label in (("ge", ">="), ("le", "<="))
        if hasattr(rule, attr)
    ]
    return "; " + ", ".join(bounds) if bounds else ""


@app.callback()
def main() -> None:
    try:
        settings = get_settings()
    except ValidationError as exc:
        for error in exc.errors():
            name = "TRW_SERVER_" + ".".join(str(part) for part in error["loc"])
            error_console.print(
                f"[red]error:[/red] invalid setting {name}: {error['msg']}"
            )
        raise typer.Exit(2) from exc
    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT)


@app.command(epilog=_settings_help())
def serve(
    host: Annotated[
        str | None, typer.Option(help="Listen address [TRW_SERVER_HOST].")
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="TCP port [TRW_SERVER_PORT].")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="Worker processes [TRW_SERVER_WORKERS]."),
    ] = None,
) -> None:
    """Apply migrations, create a first organization on an empty database, and serve."""
    _apply_overrides(host=host, port=port, workers=workers)
    settings = get_settings()
    _check_port_free(settings.HOST, settings.PORT)
    prepare_data_dir(settings)
    migrations.upgrade(settings.database_url)
    protect_database_file(settings)

    raw_key = run_in_session(create_first_org_if_empty)
    if raw_key is not None:
        _print_first_run(settings, raw_key)
    else:
        console.print(
            "Create an API key with: trw-platform keys create --org SLUG"
            " (trw-platform orgs list shows the slugs)"
        )

    uvicorn.run(
        "trw_platform.app:create_app",
        factory=True,
        host=settings.HOST,
        port=settings.PORT,
        workers=settings.WORKERS,
        proxy_headers=True,
        forwarded_allow_ips=settings.FORWARDED_ALLOW_IPS,
        log_config=None,
        server_header=False,
    )


def _check_port_free(host: str, port: int) -> None:
    # Checked before the first organization is made, so a key is never
    # printed by a server that cannot start.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            error_console.print(
                f"[red]error:[/red] cannot listen on {host}:{port}: {exc.strerror};"
                " choose another with --port or TRW_SERVER_PORT"
            )
            raise typer.Exit(1) from exc


def _apply_overrides(**values: object) -> None:
    # Environment variables, so worker processes read the same settings.
    for name, value in values.items():
        if value is not None:
            os.environ[f"TRW_SERVER_{name.upper()}"] = str(value)
    get_settings.cache_clear()


def _print_first_run(settings: Settings, raw_key: str) -> None:
    url = settings.public_url
    console.print(
        "\nCreated the first organization and its API key."
        " The key is shown only once:\n"
    )
    console.print(f"  {raw_key}\n", soft_wrap=True, highlight=False)
    console.print("Point trw-mcp at this server:\n")
    console.print(f"  export TRW_PLATFORM_URL={url}", soft_wrap=True, highlight=False)
    console.print(
        f"  export TRW_PLATFORM_API_KEY={raw_key}", soft_wrap=True, highlight=False
    )
    if needs_trusted_host(url):
        host = urlsplit(url).hostname
        console.print(
            f"  export TRW_PLATFORM_TRUSTED_HOSTS={host}",
            soft_wrap=True,
            highlight=False,
        )
    console.print("")


@app.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "heads",
) -> None:
    """Apply database migrations up to a revision (default: the latest)."""
    settings = get_settings()
    prepare_data_dir(settings)
    try:
        migrations.upgrade(settings.database_url, revision)
    except CommandError as exc:
        error_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    protect_database_file(settings)
    current = migrations.current_revisions_sync(settings.database_url)
    console.print(f"Database is at revision {', '.join(current) or 'none'}")


@app.command()
def version() -> None:
    """Print the server version."""
    console.print(__version__)
