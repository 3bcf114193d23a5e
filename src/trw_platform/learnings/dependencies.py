"""Scope aliases for the learnings routes."""

from typing import Annotated

from fastapi import Depends

from trw_platform.orgs import scopes
from trw_platform.orgs.dependencies import ApiKeyPrincipal, require_scope

LearningsWriter = Annotated[
    ApiKeyPrincipal, Depends(require_scope(scopes.LEARNINGS_WRITE))
]
LearningsReader = Annotated[
    ApiKeyPrincipal, Depends(require_scope(scopes.LEARNINGS_READ))
]
