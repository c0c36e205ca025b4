"""engine package (see its issue)."""
