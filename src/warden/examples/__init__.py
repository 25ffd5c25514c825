"""Packaged examples: the policies ``warden serve --dev`` loads and a sample config file.

importlib.resources.files("warden.examples") / "policies"     # *.cedar + cases.yaml
importlib.resources.files("warden.examples") / "warden.yaml"  # annotated sample config
"""
