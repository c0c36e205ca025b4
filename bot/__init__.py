"""bot package (see its issue)."""
