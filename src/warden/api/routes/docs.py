"""/docs: the API reference, offline. Swagger UI's files come from the ``swagger-ui-bundle``
package (installed with Warden), its start-up script from ``warden.ui``: nothing is fetched from
another origin, so the page works with no internet."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from warden.errors import NotFoundError

router = APIRouter(include_in_schema=False)

SWAGGER_FILES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
# Swagger UI sets inline styles; scripts still come only from this server.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)
PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Warden API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css">
<link rel="icon" href="/docs/static/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script src="/console/static/docs-init.js"></script>
</body>
</html>
"""


def _swagger_dir() -> Path:
    import swagger_ui_bundle

    return Path(swagger_ui_bundle.swagger_ui_path)


def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = DOCS_CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@router.get("/docs")
async def docs(request: Request) -> Response:
    return _headers(HTMLResponse(PAGE))


@router.get("/docs/static/{name}")
async def asset(request: Request, name: str) -> Response:
    media = SWAGGER_FILES.get(name)
    if media is None:
        raise NotFoundError(f"no documentation file `{name[:60]}`")
    body = await run_in_threadpool((_swagger_dir() / name).read_bytes)
    response = Response(body, media_type=media)
    response.headers["Cache-Control"] = "public, max-age=86400"
    return _headers(response)
