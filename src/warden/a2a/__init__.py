"""The A2A enforcement point (``warden a2a-proxy``): Warden in front of an Agent2Agent server."""
