"""Pure domain core: value types and rules with no I/O and no third-party imports."""
