"""Print which proxy httpx and urllib would use for each URL, without sending anything.

Usage: ``proxy_routes.py URL...``. Each URL maps to ``{"httpx": PROXY_OR_NULL,
"urllib": PROXY_OR_NULL}``. For httpx the driver inspects the transport that
``Client._transport_for_url`` (private in httpx 0.29) picks for the URL.
"""

from __future__ import annotations

import sys
import urllib.request
from urllib.parse import urlsplit

import httpx
from _driver_support import HttpRecorder, emit_result

DRIVER = "proxy_routes"


def httpx_proxy(client: httpx.Client, url: str) -> str | None:
    transport = client._transport_for_url(httpx.URL(url))
    proxy_url = getattr(getattr(transport, "_pool", None), "_proxy_url", None)
    if proxy_url is None:
        return None
    return f"{proxy_url.scheme.decode()}://{proxy_url.host.decode()}:{proxy_url.port}"


def urllib_proxy(url: str) -> str | None:
    parts = urlsplit(url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return urllib.request.getproxies().get(parts.scheme)


def main() -> None:
    recorder = HttpRecorder().install()
    with httpx.Client() as client:
        routes = {
            url: {"httpx": httpx_proxy(client, url), "urllib": urllib_proxy(url)}
            for url in sys.argv[1:]
        }
    emit_result(DRIVER, recorder, routes=routes)


if __name__ == "__main__":
    main()
