from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status

from trw_platform.core.db import SessionDep
from trw_platform.learnings import search as search_service
from trw_platform.learnings import service
from trw_platform.learnings.dependencies import LearningsReader, LearningsWriter
from trw_platform.learnings.repository import LearningFilters
from trw_platform.learnings.schemas import (
    MAX_TAG_CHARS,
    LearningCreate,
    LearningPage,
    LearningRead,
    LearningSearch,
    LearningStatusUpdate,
    LearningType,
    SearchResultsRead,
    Status,
)
from trw_platform.learnings.search import SearchRuntime

router = APIRouter(tags=["learnings"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No learning with this id in the caller's organization"}
}


def _runtime(request: Request) -> SearchRuntime:
    runtime: SearchRuntime | None = getattr(request.app.state, "learnings_search", None)
    if runtime is None:
        settings = request.app.state.settings
        runtime = SearchRuntime.create(
            embeddings=settings.EMBEDDINGS, reader=request.app.state.sqlite_reader
        )
        request.app.state.learnings_search = runtime
    return runtime


@router.post(
    "/learnings",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": LearningRead, "description": "Updated or unchanged"}},
)
async def publish_learning(
    request: Request,
    response: Response,
    session: SessionDep,
    principal: LearningsWriter,
    body: LearningCreate,
) -> LearningRead:
    """Publish a learning: 201 when new, 200 when it updates or repeats one."""
    result = await service.publish(
        session,
        organization_id=principal.organization_id,
        key_id=principal.key_id,
        data=body,
        embedder=_runtime(request).writer,
    )
    if not result.created:
        response.status_code = status.HTTP_200_OK
    return LearningRead.model_validate(result.learning)


@router.post("/learnings/search")
async def search_learnings(
    request: Request,
    session: SessionDep,
    principal: LearningsReader,
    body: LearningSearch,
) -> SearchResultsRead:
    """Search the organization's learnings by keywords and meaning, best first."""
    results = await search_service.search(
        session,
        organization_id=principal.organization_id,
        request=body,
        runtime=_runtime(request),
    )
    return SearchResultsRead(results=results)


@router.get("/learnings")
async def list_learnings(
    session: SessionDep,
    principal: LearningsReader,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
    status: Annotated[list[Status] | None, Query()] = None,
    type: Annotated[list[LearningType] | None, Query()] = None,
    tag: Annotated[list[str] | None, Query(max_length=MAX_TAG_CHARS)] = None,
    text: Annotated[str | None, Query(max_length=1000)] = None,
) -> LearningPage:
    """List learnings, most recently updated first."""
    filters = LearningFilters(
        statuses=tuple(status) if status else None,
        types=tuple(type) if type else None,
        tags=tuple(tag) if tag else None,
        text=text or None,
    )
    learnings, total = await service.list_learnings(
        session,
        organization_id=principal.organization_id,
        filters=filters,
        page=page,
        page_size=page_size,
    )
    items = [LearningRead.model_validate(learning) for learning in learnings]
    return LearningPage(items=items, total=total, page=page, page_size=page_size)


# NOTE: a fixed path under /learnings/ such as a stream route must be declared
# above this one, or this route takes it as a learning id.
@router.get("/learnings/{learning_id}", responses=NOT_FOUND)
async def get_learning(
    session: SessionDep, principal: LearningsReader, learning_id: str
) -> LearningRead:
    """Return one learning of the caller's organization."""
    learning = await service.get_learning(
        session, organization_id=principal.organization_id, learning_id=learning_id
    )
    return LearningRead.model_validate(learning)


@router.patch("/learnings/{learning_id}/status", responses=NOT_FOUND)
async def update_learning_status(
    session: SessionDep,
    principal: LearningsWriter,
    learning_id: str,
    body: LearningStatusUpdate,
) -> LearningRead:
    """Set a learning's status; repeating the current status changes nothing."""
    learning = await service.set_status(
        session,
        organization_id=principal.organization_id,
        learning_id=learning_id,
        status=body.status,
        key_id=principal.key_id,
    )
    return LearningRead.model_validate(learning)
