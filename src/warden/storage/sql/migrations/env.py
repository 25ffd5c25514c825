"""Alembic environment for the Warden SQL store.

Normally run by ``SQLStore.migrate()``, which passes an open connection (already inside its
transaction) in ``config.attributes["connection"]``. Without one, the URL comes from
``-x url=...`` or the ``sqlalchemy.url`` option, and an engine is made with the store's own
settings.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from warden.storage.sql.tables import metadata

config = context.config


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise RuntimeError("no database: pass a connection, `-x url=...` or `sqlalchemy.url`")
    return url


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    from warden.storage.sql.store import normalize_url

    context.configure(
        url=normalize_url(_url()),
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if isinstance(connection, Connection):
        _run(connection)
        return
    from warden.storage.sql.store import open_store

    store = open_store(_url())
    try:
        with store.engine.begin() as conn:
            _run(conn)
    finally:
        store.close()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
