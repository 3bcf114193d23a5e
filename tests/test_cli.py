"""The trw-platform command: orgs, keys, migrate and serve --help."""

import re
import socket
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trw_platform.cli import app
from trw_platform.core import migrate
from trw_platform.core.settings import get_settings

runner = CliRunner()
KEY_PATTERN = re.compile(r"trw_live_[0-9A-Za-z]{38}")


@pytest.fixture
def cli_env(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    env = {
        "TRW_SERVER_DATABASE_URL": database_url,
        "TRW_SERVER_DATA_DIR": str(tmp_path),
        "TRW_SERVER_LOG_LEVEL": "warning",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    runner.invoke(app, ["migrate"])
    yield env
    get_settings.cache_clear()


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


def test_orgs_create_and_list(cli_env: dict[str, str]) -> None:
    slug = f"team-{uuid.uuid4().hex[:8]}"

    created = invoke("orgs", "create", "Team Rocket", "--slug", slug)
    duplicate = invoke("orgs", "create", "Team Rocket", "--slug", slug)
    listed = invoke("orgs", "list")

    assert created.exit_code == 0, created.output
    assert f"slug: {slug}" in created.output
    assert duplicate.exit_code == 1
    assert "already exists" in duplicate.output
    assert slug in listed.output


def test_keys_create_list_revoke(cli_env: dict[str, str]) -> None:
    slug = f"keys-{uuid.uuid4().hex[:8]}"
    invoke("orgs", "create", "Keys Org", "--slug", slug)

    created = invoke(
        "keys", "create", "--org", slug, "--name", "ci", "--scope", "telemetry:write"
    )
    raw_key = KEY_PATTERN.search(created.output)
    key_id = re.search(r"Created API key ([0-9a-f]{32})", created.output)
    listed = invoke("keys", "list", "--org", slug)
    revoked = invoke("keys", "revoke", key_id.group(1) if key_id else "")
    listed_after = invoke("keys", "list", "--org", slug)

    assert created.exit_code == 0, created.output
    assert raw_key is not None
    assert key_id is not None
    assert raw_key.group(0) not in listed.output
    assert raw_key.group(0)[-4:] in listed.output
    assert "telemetry:write" in listed.output
    assert revoked.exit_code == 0
    assert "Revoked API key" in revoked.output
    assert listed_after.output.count("UTC") > listed.output.count("UTC")


def test_keys_errors_exit_nonzero(cli_env: dict[str, str]) -> None:
    unknown_org = invoke("keys", "create", "--org", "no-such-org")
    unknown_key = invoke("keys", "revoke", "0" * 32)
    bad_scope = invoke("keys", "create", "--org", "whatever", "--scope", "root")

    assert unknown_org.exit_code == 1
    assert "not found" in unknown_org.output
    assert unknown_key.exit_code == 1
    assert bad_scope.exit_code == 2
    assert "unknown scope root" in bad_scope.output


def test_migrate_reports_revision(cli_env: dict[str, str]) -> None:
    result = invoke("migrate")

    assert result.exit_code == 0
    # Each domain has its own branch, so the database sits at every head.
    for head in migrate.head_revisions():
        assert head in result.output


def test_serve_help_documents_every_setting() -> None:
    result = invoke("serve", "--help")

    assert result.exit_code == 0
    for name in (
        "DATA_DIR",
        "DATABASE_URL",
        "REDIS_URL",
        "HOST",
        "PORT",
        "WORKERS",
        "SECRET_KEY",
        "LOG_LEVEL",
        "LOG_FORMAT",
    ):
        assert f"TRW_SERVER_{name}" in result.output
    assert "--workers" in result.output


def test_blank_and_long_names_rejected(cli_env: dict[str, str]) -> None:
    blank = invoke("orgs", "create", "   ")
    long_name = invoke("orgs", "create", "x" * 201)

    assert blank.exit_code == 1
    assert "1 to 200 characters" in blank.output
    assert long_name.exit_code == 1


def test_revoke_twice_says_already_revoked(cli_env: dict[str, str]) -> None:
    slug = f"twice-{uuid.uuid4().hex[:8]}"
    invoke("orgs", "create", "Twice", "--slug", slug)
    created = invoke("keys", "create", "--org", slug)
    key_id = re.search(r"Created API key ([0-9a-f]{32})", created.output)
    assert key_id is not None

    first = invoke("keys", "revoke", key_id.group(1))
    second = invoke("keys", "revoke", key_id.group(1))

    assert "Revoked API key" in first.output
    assert "already revoked" in second.output


def test_invalid_setting_named_with_prefix(
    cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRW_SERVER_PORT", "abc")
    get_settings.cache_clear()

    result = invoke("version")

    assert result.exit_code == 2
    assert "invalid setting TRW_SERVER_PORT" in result.output


def test_migrate_unknown_revision_fails_cleanly(cli_env: dict[str, str]) -> None:
    result = invoke("migrate", "no-such-revision")

    assert result.exit_code == 1
    assert "no-such-revision" in result.output
    assert "Traceback" not in result.output


def test_serve_refuses_taken_port(cli_env: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = invoke("serve", "--port", str(port))

    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
    assert "trw_live_" not in result.output


def test_commands_on_missing_database_say_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "never-served"
    monkeypatch.setenv("TRW_SERVER_DATA_DIR", str(data_dir))
    monkeypatch.delenv("TRW_SERVER_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    try:
        result = invoke("orgs", "create", "Acme")
    finally:
        get_settings.cache_clear()

    assert result.exit_code == 1
    assert "run 'trw-platform migrate'" in result.output
    assert "Traceback" not in result.output
    assert not (data_dir / "trw-platform.db").exists()


def test_commands_on_old_schema_ask_for_migrate(cli_env: dict[str, str]) -> None:
    migrate.downgrade(cli_env["TRW_SERVER_DATABASE_URL"], "base")
    try:
        result = invoke("orgs", "list")
    finally:
        migrate.upgrade(cli_env["TRW_SERVER_DATABASE_URL"])

    assert result.exit_code == 1
    assert "schema is not the latest" in result.output
