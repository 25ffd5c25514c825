"""Warden's Python SDK. ``warden.sdk.approvals`` waits for step-up approvals."""
