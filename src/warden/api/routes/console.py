"""The operator console at /console (docs/console.md, docs/adr/0100).

Signing in posts an operator token to ``/console/login``; the answer sets it in an HttpOnly,
SameSite=Strict cookie (never in a URL or in script reach) plus a CSRF cookie the console's
script echoes in ``X-CSRF-Token`` on every state change (checked with the request's origin in
``api/deps.py``). The pages are shells; ``console.js`` builds them from the HTTP API with the
cookie, so the server enforces every role as for any other client. Every response carries a
strict Content-Security-Policy: no inline script or style, nothing from another origin.
"""

from __future__ import annotations

import secrets

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from warden import ui
from warden.api.deps import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    any_operator,
    check_csrf,
    same_origin,
    warden_of,
)
from warden.api.errors import json_response
from warden.core.model import OperatorRole
from warden.errors import AuthenticationError, CSRFError, NotFoundError

router = APIRouter(prefix="/console", include_in_schema=False)

SESSION_MAX_AGE = 8 * 3600
MAX_TOKEN = 200


def secure(response: Response, *, cache: bool = False) -> Response:
    response.headers["Content-Security-Policy"] = ui.CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    # same-origin, not no-referrer: with no-referrer browsers send `Origin: null` on form posts
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "private, max-age=300" if cache else "no-store"
    return response


def _signed_in(request: Request) -> bool:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return False
    try:
        op = warden_of(request).operators.authenticate(token)
    except AuthenticationError:
        return False
    return op.role is not OperatorRole.PEP


@router.get("")
async def home(request: Request) -> Response:
    return secure(RedirectResponse("/console/approvals", status_code=303))


@router.get("/login")
async def login_page(request: Request) -> Response:
    return secure(HTMLResponse(ui.login()))


@router.post("/login")
async def login(request: Request) -> Response:
    """Form post of an operator token: sets the session and CSRF cookies."""
    if not same_origin(request):
        raise CSRFError("sign in from this server's console page")
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        return secure(HTMLResponse(ui.login("send the sign-in form"), status_code=400))
    form = await request.form(max_files=0, max_fields=5)
    token = form.get("token")
    token = token.strip() if isinstance(token, str) else ""
    if not token or len(token) > MAX_TOKEN:
        return secure(HTMLResponse(ui.login("enter an operator token"), status_code=401))
    try:
        op = await run_in_threadpool(warden_of(request).operators.authenticate, token)
    except AuthenticationError:
        return secure(HTMLResponse(ui.login("invalid operator token"), status_code=401))
    if op.role is OperatorRole.PEP:  # a machine account: it may only ask the PDP
        return secure(HTMLResponse(ui.login("a `pep` account cannot sign in"), status_code=403))
    response = RedirectResponse("/console/approvals", status_code=303)
    https = request.url.scheme == "https"
    response.set_cookie(
        SESSION_COOKIE, token, max_age=SESSION_MAX_AGE, path="/", secure=https,
        httponly=True, samesite="strict",
    )  # fmt: skip
    response.set_cookie(
        CSRF_COOKIE, secrets.token_urlsafe(32), max_age=SESSION_MAX_AGE, path="/",
        secure=https, httponly=False, samesite="strict",
    )  # fmt: skip
    return secure(response)


@router.post("/logout")
async def logout(request: Request) -> Response:
    if request.cookies.get(SESSION_COOKIE):
        check_csrf(request)
    response = json_response({"signed_out": True})
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return secure(response)


@router.get("/session")
async def session(request: Request) -> Response:
    """Who is signed in: the console hides what the role may not do (the API refuses it)."""
    op = await run_in_threadpool(any_operator, request)
    return secure(json_response({"name": op.name, "role": op.role.value, "human": op.human}))


@router.get("/static/{name}")
async def static(request: Request, name: str) -> Response:
    found = await run_in_threadpool(ui.static, name)
    if found is None:
        raise NotFoundError(f"no console file `{name[:60]}`")
    body, media = found
    return secure(Response(body, media_type=media), cache=True)


@router.get("/decisions/{decision_id}")
async def decision_page(request: Request, decision_id: str) -> Response:
    return await _page(request, "decision")


@router.get("/{slug}")
async def page(request: Request, slug: str) -> Response:
    if slug not in ui.PAGES or slug == "decision":
        raise NotFoundError(f"no console page `{slug[:60]}`")
    return await _page(request, slug)


async def _page(request: Request, slug: str) -> Response:
    if not await run_in_threadpool(_signed_in, request):
        return secure(RedirectResponse("/console/login", status_code=303))
    return secure(HTMLResponse(ui.page(slug)))
