"""The ``warden demo`` story, as its own package.

- ``command`` — the ``warden demo [--keep]`` command (registered by ``warden.cli.main``);
- ``server`` — a real ``warden serve --dev`` process on a free port (the demo's, and tests');
- ``story`` — the shared ``Demo`` state, the core steps, ``all_steps`` and ``run_steps``;
- one module per chapter: ``attestation``, ``lifecycle``, ``approvals``, ``enforcement``,
  ``governance``, ``integrity`` (each with its ``STEPS``).

It is a client of the server over HTTP, like the CLI whose output helpers it uses.
"""
