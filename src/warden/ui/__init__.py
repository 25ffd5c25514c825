"""The operator console's assets: page shells and the static files they load.

Nothing here imports a web framework: ``warden.api.routes.console`` serves these files, and
the console's script talks only to the HTTP API (docs/adr/0100). Every asset ships inside the
package, so the console works with no network beyond the Warden server itself.
"""

from __future__ import annotations

from html import escape
from importlib import resources

PAGES: dict[str, str] = {
    "approvals": "Approvals",
    "agents": "Agents",
    "decisions": "Live decisions",
    "decision": "Decision",
    "tasks": "Tasks",
    "certification": "Certification",
    "policies": "Policies",
    "evidence": "Evidence",
}

STATIC_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}

# No inline script or style anywhere: the pages load /console/static/* only.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def _template(name: str) -> str:
    return resources.files(__package__).joinpath("templates", name).read_text("utf-8")


def page(slug: str) -> str:
    """The HTML shell of one console page (its content is built by console.js)."""
    title = PAGES[slug]
    return _template("layout.html").replace("{{title}}", escape(title)).replace("{{page}}", slug)


def login(error: str | None = None) -> str:
    message = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    return _template("login.html").replace("{{error}}", message)


def static(name: str) -> tuple[bytes, str] | None:
    """(content, media type) of a packaged static file, or None for anything else."""
    if "/" in name or "\\" in name or name.startswith("."):
        return None
    media = next((t for ext, t in STATIC_TYPES.items() if name.endswith(ext)), None)
    if media is None:
        return None
    path = resources.files(__package__).joinpath("static", name)
    if not path.is_file():
        return None
    return path.read_bytes(), media
