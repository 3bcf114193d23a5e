from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from trw_platform.core.db import Base, IdMixin, UTCDateTime, utc_now

# TODO: delete expired sessions, link tokens, challenges and device requests
# on a schedule; until then these tables grow with every sign-in.


class User(IdMixin, Base):
    __tablename__ = "users"

    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Access tokens issued before this moment are rejected; logging out
    # everywhere and password changes move it.
    tokens_not_before: Mapped[datetime | None] = mapped_column(UTCDateTime())
    is_platform_admin: Mapped[bool] = mapped_column(Boolean(), default=False)
    # "email" or "totp" while two-factor authentication is on, else None.
    two_factor_method: Mapped[str | None] = mapped_column(String(16))
    # TODO: encrypt TOTP secrets at rest; until then a database dump is
    # enough to compute a user's codes.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_pending_secret: Mapped[str | None] = mapped_column(String(64))
    # Time step of the last TOTP code accepted, so a code works only once.
    totp_last_step: Mapped[int | None] = mapped_column(Integer())


class UserSession(IdMixin, Base):
    """One sign-in: the family of refresh tokens that rotate from one login."""

    __tablename__ = "user_sessions"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_reason: Mapped[str | None] = mapped_column(String(32))
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(300))


class RefreshToken(IdMixin, Base):
    __tablename__ = "refresh_tokens"

    session_id: Mapped[str] = mapped_column(
        ForeignKey("user_sessions.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class EmailToken(IdMixin, Base):
    """A single-use link token for email verification or password reset."""

    __tablename__ = "email_tokens"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(32))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class TwoFactorChallenge(IdMixin, Base):
    """A pending second-factor check for a login, an enablement or a disable."""

    __tablename__ = "two_factor_challenges"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(16))
    # Only login challenges have a token; the client sends it to /2fa/verify.
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Keyed hash of the mailed code; None for TOTP challenges.
    code_hash: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer(), default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class BackupCode(IdMixin, Base):
    __tablename__ = "backup_codes"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class DeviceAuthorization(IdMixin, Base):
    """An RFC 8628 device authorization request and what became of it."""

    __tablename__ = "device_authorizations"

    device_code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_code: Mapped[str] = mapped_column(String(8), unique=True)
    client_id: Mapped[str] = mapped_column(String(100))
    # pending, approved, denied or issued
    status: Mapped[str] = mapped_column(String(16), default="pending")
    interval: Mapped[int] = mapped_column(Integer())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    requester_ip: Mapped[str | None] = mapped_column(String(45))
    requester_user_agent: Mapped[str | None] = mapped_column(String(300))
    user_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    organization_id: Mapped[str | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    api_key_id: Mapped[str | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="SET NULL")
    )
