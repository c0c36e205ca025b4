"""memebot: a Discord bot that writes meme captions with its own character-level network."""

from __future__ import annotations

__version__ = "0.1.0"
