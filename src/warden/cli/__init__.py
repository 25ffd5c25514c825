"""The ``warden`` command line: a thin adapter over the HTTP management API and a few local tools.

Server-backed commands talk to a running ``warden serve`` through :mod:`warden.cli.client`;
``policies validate``/``policies test``, ``audit verify`` and ``dev svid`` work locally.
"""
