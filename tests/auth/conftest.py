from collections.abc import Iterator

import pytest

from trw_platform.auth import passwords


@pytest.fixture(autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    """Hash with a tiny argon2 cost; the timing tests restore the real one."""
    passwords.set_hash_cost(time_cost=1, memory_kib=1024)
    yield
    passwords.set_hash_cost(time_cost=3, memory_kib=65536)
