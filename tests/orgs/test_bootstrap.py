"""First-run set-up and the trusted-host hint it prints."""

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from trw_platform.orgs import keys, service
from trw_platform.orgs.bootstrap import create_first_org_if_empty, needs_trusted_host

pytestmark = pytest.mark.anyio


async def test_first_org_created_once(db: AsyncSession) -> None:
    first = await create_first_org_if_empty(db)
    await db.commit()
    second = await create_first_org_if_empty(db)

    assert first is not None
    assert keys.is_well_formed(first)
    assert second is None
    assert len(await service.list_organizations(db)) == 1


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8000", False),
        ("http://localhost:8000", False),
        ("http://[::1]:8000", False),
        ("http://10.1.2.3:8000", True),
        ("https://trw.example.org", True),
    ],
)
def test_trusted_host_needed(url: str, expected: bool) -> None:
    assert needs_trusted_host(url) is expected
