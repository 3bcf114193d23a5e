"""Plain async factories for test data; each flushes and commits its rows."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from trw_platform.auth import passwords
from trw_platform.auth.models import User
from trw_platform.core.db import utc_now
from trw_platform.orgs import memberships, service
from trw_platform.orgs.models import ApiKey, Organization


@dataclass
class OrgWithKey:
    organization: Organization
    api_key: ApiKey
    raw_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.raw_key}"}


async def make_org(
    db: AsyncSession, name: str = "Acme", **overrides: object
) -> Organization:
    organization = await service.create_organization(db, name=name, **overrides)  # type: ignore[arg-type]
    await db.commit()
    return organization


async def make_key(
    db: AsyncSession,
    organization: Organization,
    *,
    scopes: list[str] | None = None,
    expires_at: datetime | None = None,
    prefix: str = "trw_live_",
) -> tuple[ApiKey, str]:
    api_key, raw_key = await service.create_api_key(
        db,
        organization_id=organization.id,
        name="test key",
        scopes=scopes or ["*"],
        expires_at=expires_at,
        prefix=prefix,
    )
    await db.commit()
    return api_key, raw_key


async def make_org_with_key(
    db: AsyncSession, name: str = "Acme", *, scopes: list[str] | None = None
) -> OrgWithKey:
    organization = await make_org(db, name)
    api_key, raw_key = await make_key(db, organization, scopes=scopes)
    return OrgWithKey(organization, api_key, raw_key)


@dataclass
class UserWithOrg:
    user: User
    organization: Organization
    password: str


async def make_user(
    db: AsyncSession,
    email: str = "ada@example.com",
    password: str = "correct horse battery",
    *,
    verified: bool = True,
) -> UserWithOrg:
    """Create a user who owns a personal organization, as registration does."""
    user = User(email=email, password_hash=await passwords.hash_password(password))
    user.email_verified_at = utc_now() if verified else None
    db.add(user)
    await db.flush()
    organization = await memberships.create_personal_organization(
        db, user_id=user.id, email=email
    )
    await db.commit()
    return UserWithOrg(user, organization, password)
