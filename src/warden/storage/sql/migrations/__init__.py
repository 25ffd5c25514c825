"""Alembic migrations for the Warden SQL store, packaged inside the library.

``SQLStore.migrate()`` runs them programmatically: it builds an ``alembic.config.Config`` with
``alembic_config()`` (``script_location`` = this directory, no ``alembic.ini``), passes its own
connection in ``config.attributes["connection"]`` and calls ``command.upgrade(config, "head")``
inside one transaction that holds a migration lock (PostgreSQL advisory lock / SQLite
``BEGIN IMMEDIATE``), so concurrent ``migrate()`` calls are safe and a repeated call is a no-op.

Adding a revision
-----------------
1. Change ``warden/storage/sql/tables.py`` to the new shape.
2. Create ``versions/NNNN_short_name.py`` (next number, e.g. ``0002_add_foo.py``) with
   ``revision = "0002"`` and ``down_revision`` = the current head (``"0001"``). Either copy the
   layout of ``0001_initial.py`` by hand, or let Alembic draft it against a database that is
   at head::

       from alembic import command
       from warden.storage.sql import open_store
       from warden.storage.sql.migrations import alembic_config

       store = open_store("sqlite:////tmp/draft.db")
       store.migrate()
       with store.engine.begin() as conn:
           command.revision(
               alembic_config(conn), message="add foo", rev_id="0002", autogenerate=True
           )

   then review it (the draft needs `ruff format` and may import unused names).
3. Write plain ``op.*`` calls with literal names and types: never import ``tables.py`` from a
   revision (a revision describes one step forever; ``tables.py`` moves on). Keep revisions
   portable between SQLite and PostgreSQL; use ``op.batch_alter_table`` for ALTERs that SQLite
   cannot do in place.
4. Run ``pytest tests/storage``: ``test_migrations_match_tables`` fails while the revisions and
   ``tables.py`` disagree.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection

SCRIPT_LOCATION = Path(__file__).resolve().parent


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for this package; ``connection`` is handed to ``env.py``."""
    from alembic.config import Config

    config = Config()
    # ConfigParser interpolation: a literal "%" in the path must be doubled.
    config.set_main_option("script_location", str(SCRIPT_LOCATION).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config
