"""The web pages: the kiosk (`GET /kiosk`), the webshop try-on (`GET /tryon`) and their static assets under
`/web/...` (api/web/). Pages are public static files that hold no personal data: every datum comes from the
authenticated /v1 API, called by the page's script with the key the user gives it. They are not part of the
API schema. Every page and asset carries strict security headers: a Content-Security-Policy that allows only
the service's own origin (no inline script or style, no eval), no MIME sniffing, no referrer."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from starlette.staticfiles import StaticFiles

from core.errors import NotFound

WEB_DIR = Path(__file__).resolve().parent / "web"
PAGES = {"/kiosk": "kiosk/index.html", "/tryon": "tryon/index.html"}  # path -> file under WEB_DIR
ASSETS_PATH = "/web"
_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob:; font-src 'self'; "
           "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'")


def security_headers(frame_ancestors: str = "'none'") -> dict[str, str]:
    """The headers of every page and asset; `frame_ancestors` is who may embed it in a frame."""
    return {"Content-Security-Policy": f"{_POLICY}; frame-ancestors {frame_ancestors}",
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def mount_pages(app: FastAPI, tryon_frame_ancestors: list[str]) -> None:
    """Serve the pages and assets on `app`; the try-on page may be framed by the service and the listed origins
    (a webshop embedding it), the kiosk by nobody."""
    embedders = {"/tryon": " ".join(["'self'", *tryon_frame_ancestors]), "/kiosk": "'none'"}
    for path, file in PAGES.items():
        app.add_api_route(path, _page(WEB_DIR / file, security_headers(embedders[path])), methods=["GET"],
                          include_in_schema=False)
    app.mount(ASSETS_PATH, WithHeaders(StaticFiles(directory=WEB_DIR), security_headers()), name="web")


def _page(file: Path, headers: dict[str, str]):
    def page() -> FileResponse:
        if not file.is_file():
            raise NotFound(f"this page is not installed ({file.relative_to(WEB_DIR)} is missing from the package): "
                           f"reinstall footfit")
        return FileResponse(file, media_type="text/html; charset=utf-8",
                            headers={**headers, "Cache-Control": "no-cache"})
    return page


class WithHeaders:
    """ASGI wrapper adding fixed headers to every response of the wrapped app (here: the static files)."""

    def __init__(self, app, headers: dict[str, str]):
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def __call__(self, scope, receive, send):
        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self.headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
