"""Server settings, read from ``TRW_SERVER_*`` environment variables."""

import os
import secrets
import socket
from functools import lru_cache
from pathlib import Path
from typing import Literal

from limits import parse
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRET_KEY_FILE = "secret_key"
DATABASE_FILE = "trw-platform.db"


class Settings(BaseSettings):
    """Every setting of the server; each field is ``TRW_SERVER_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="TRW_SERVER_", case_sensitive=False, extra="ignore"
    )

    DATA_DIR: Path = Field(
        Path("data"),
        description="Folder for the SQLite database and generated secrets, "
        "relative to the current directory unless absolute.",
    )
    DATABASE_URL: str = Field(
        "",
        description="SQLAlchemy URL; empty means SQLite at DATA_DIR/trw-platform.db. "
        "PostgreSQL: postgresql+asyncpg://user@host:5432/db.",
    )
    REDIS_URL: str = Field(
        "",
        description="Redis URL for shared rate-limit counters; empty keeps them "
        "in the worker's memory.",
    )
    HOST: str = Field("127.0.0.1", description="Address the server listens on.")
    PORT: int = Field(8000, ge=1, le=65535, description="TCP port to listen on.")
    WORKERS: int = Field(1, ge=1, le=64, description="Number of worker processes.")
    SECRET_KEY: SecretStr = Field(
        SecretStr(""),
        description="Key that signs tokens; empty means one generated once and "
        "kept in DATA_DIR/secret_key.",
    )
    LOG_LEVEL: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Lowest log level written."
    )
    LOG_FORMAT: Literal["console", "json"] = Field(
        "console", description="Log line format: console for people, json for tools."
    )
    PUBLIC_URL: str = Field(
        "",
        description="Base URL that clients use to reach the server, printed in "
        "set-up hints; empty means http://HOST:PORT.",
    )
    RATE_LIMIT_ENABLED: bool = Field(True, description="Turn rate limiting on or off.")
    RATE_LIMIT_DEFAULT: str = Field(
        "300/minute", description="Limit per API key for ordinary routes."
    )
    RATE_LIMIT_TELEMETRY: str = Field(
        "6000/minute", description="Limit per API key for POST /v1/telemetry."
    )
    RATE_LIMIT_IP: str = Field(
        "1200/minute", description="Limit per client IP across all routes."
    )
    RATE_LIMIT_AUTH: str = Field(
        "30/minute", description="Limit per client IP for credential exchange."
    )
    ACCESS_TOKEN_TTL_SECONDS: int = Field(
        900, ge=60, le=900, description="Lifetime of a JWT from POST /v1/auth/token."
    )
    MAX_BODY_BYTES: int = Field(
        16 * 1024 * 1024, ge=1024, description="Maximum request body on any route."
    )
    TELEMETRY_MAX_EVENTS: int = Field(
        1000, ge=1, description="Maximum events in one telemetry batch."
    )
    TELEMETRY_MAX_EVENT_BYTES: int = Field(
        65536, ge=256, description="Maximum size of one telemetry event, as JSON."
    )
    TELEMETRY_MAX_BODY_BYTES: int = Field(
        8 * 1024 * 1024,
        ge=1024,
        description="Maximum telemetry request body, after gzip decoding.",
    )
    TELEMETRY_MAX_CLOCK_SKEW_SECONDS: int = Field(
        600,
        ge=0,
        description="Events stamped further ahead of the receive time are clamped.",
    )
    EMBEDDINGS: bool = Field(
        True,
        description="on: embed learnings and search queries with the bundled "
        "local model and fuse semantic with keyword search; off: keyword "
        "search only.",
    )
    FORWARDED_ALLOW_IPS: str = Field(
        "",
        description="Comma-separated proxy addresses whose X-Forwarded-For header "
        "sets the client IP; empty trusts no proxy.",
    )
    RATE_LIMIT_ACCOUNT_MAIL: str = Field(
        "5/hour",
        description="Limit per email address for register, resend-verification "
        "and password-reset requests.",
    )
    RATE_LIMIT_DEVICE_CODE: str = Field(
        "10/minute", description="Limit per client IP for new device codes."
    )
    REFRESH_TOKEN_TTL_SECONDS: int = Field(
        30 * 24 * 3600,
        ge=300,
        description="Lifetime of a sign-in session; refreshing does not extend it.",
    )
    LOGIN_FREE_FAILURES: int = Field(
        3,
        ge=1,
        description="Failed logins per account and IP before delays start.",
    )
    LOGIN_MAX_DELAY_SECONDS: int = Field(
        900,
        ge=1,
        description="Maximum delay after repeated failed logins, in seconds.",
    )
    SMTP_URL: str = Field(
        "",
        description="Mail server: smtp://user:pass@host:587 (STARTTLS when "
        "offered), smtp+starttls://... (STARTTLS required) or smtps://host:465 "
        "(TLS); empty keeps mail in the outbox table, see 'trw-platform mail list'.",
    )
    MAIL_FROM: str = Field(
        "trw-platform <noreply@localhost>",
        description="From address of the mail the server sends.",
    )

    @field_validator(
        "RATE_LIMIT_DEFAULT", "RATE_LIMIT_TELEMETRY", "RATE_LIMIT_IP", "RATE_LIMIT_AUTH"
    )
    @classmethod
    def _check_rate_limit(cls, value: str) -> str:
        try:
            parse(value)
        except ValueError as exc:
            raise ValueError(
                f"{value!r} is not a rate limit; write it like '300/minute'"
            ) from exc
        return value

    @property
    def database_url(self) -> str:
        if self.DATABASE_URL:
            return self.DATABASE_URL
        return f"sqlite+aiosqlite:///{self.DATA_DIR.resolve() / DATABASE_FILE}"

    @property
    def public_url(self) -> str:
        if self.PUBLIC_URL:
            return self.PUBLIC_URL.rstrip("/")
        # A wildcard address is no place to connect to: name this machine.
        host = socket.gethostname() if self.HOST in ("0.0.0.0", "::") else self.HOST
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.PORT}"

    def secret_key(self) -> str:
        """Return the signing key, generating it once into the data folder."""
        if self.SECRET_KEY.get_secret_value():
            return self.SECRET_KEY.get_secret_value()
        return _read_or_create_secret(self.DATA_DIR / SECRET_KEY_FILE)


def _read_or_create_secret(path: Path) -> str:
    if path.exists():
        return path.read_text().strip()

    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(secrets.token_urlsafe(48))
    temporary.chmod(0o600)

    # NOTE: link() fails when the file exists, so concurrent workers agree on
    # the first key written instead of overwriting each other's.
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        temporary.unlink()
    return path.read_text().strip()


def prepare_data_dir(settings: Settings) -> None:
    """Create the data folder, readable by its owner only, and the signing key."""
    settings.DATA_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    settings.secret_key()


def protect_database_file(settings: Settings) -> None:
    """Make the SQLite database and its WAL files readable by the owner only."""
    if settings.DATABASE_URL:
        return
    database = settings.DATA_DIR.resolve() / DATABASE_FILE
    for path in (database, *database.parent.glob(f"{DATABASE_FILE}-*")):
        path.chmod(0o600)


@lru_cache
def get_settings() -> Settings:
    return Settings()
