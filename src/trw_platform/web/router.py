"""Server-rendered pages: device sign-in approval and the account mail links."""

from fastapi import APIRouter
from fastapi.responses import Response

from trw_platform.web import account_pages, device_pages, pages

router = APIRouter(include_in_schema=False)
router.include_router(device_pages.router)
router.include_router(account_pages.router)

_STYLESHEET = (pages.STATIC_DIR / "web.css").read_bytes()


@router.get("/static/web.css")
async def read_stylesheet() -> Response:
    return Response(
        _STYLESHEET,
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600"},
    )
