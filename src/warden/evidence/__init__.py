"""Evidence reports: the control catalogue evaluated over the audit log, mapped to frameworks."""
