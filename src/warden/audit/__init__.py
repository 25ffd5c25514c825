"""Audit trail: an append-only, hash-chained record of everything changed or decided."""

from warden.audit.writer import AuditWriter

__all__ = ["AuditWriter"]
