"""Database URL helpers that need no SQLAlchemy import."""

from __future__ import annotations

from pathlib import Path

SQLITE_FILENAME = "warden.db"


def sqlite_url_for(data_dir: Path | str) -> str:
    """The SQLAlchemy URL of ``<data_dir>/warden.db`` (absolute; the directory is not created)."""
    path = (Path(data_dir).expanduser().absolute() / SQLITE_FILENAME).as_posix()
    # SQLAlchemy percent-decodes the database part and ends it at "?"
    escaped = path.replace("%", "%25").replace("?", "%3F").replace("#", "%23")
    return f"sqlite:///{escaped}"
