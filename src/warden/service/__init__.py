"""Use cases composed from the inner layers. ``Warden`` (in ``app``) is the composition root."""
