"""Typed errors for user mistakes: the CLI prints them as one line and exits non-zero."""

from __future__ import annotations


class MemebotError(Exception):
    """A problem the user can fix (bad flag, missing file, corrupt artifact...).

    The message must name the offending file or flag; it is printed without a traceback.
    """

    exit_code = 2


class DataError(MemebotError):
    """Input data is missing, unreadable, or empty after cleaning."""


class ArtifactError(MemebotError):
    """A model artifact (or checkpoint) is missing, corrupt or mismatched."""


class ScorerError(ArtifactError):
    """A caption scorer's file (e.g. crowd.npz) is missing, corrupt, of a format this memebot
    does not read, or fitted for another model."""


class UsageError(MemebotError):
    """A flag has a value the command cannot use."""


class TemplateNotFound(UsageError):
    """No template answers to a name; `closest` are the nearest names (the API answers 404)."""

    def __init__(self, query: str, closest: list[str]):
        self.query, self.closest = query, closest
        hint = f"; closest: {', '.join(closest)}" if closest else ""
        super().__init__(f"unknown template {query!r}{hint}")
