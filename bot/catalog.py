"""The template catalog as the bot shows it, without Discord: pages of /templates and the
random pick of a /meme without a template (both read the engine's paged GET /v1/templates)."""

from __future__ import annotations

import random
from dataclasses import dataclass

import discord

from engine.client import EngineClient
from engine.schema import TemplateInfo
from memebot.errors import MemebotError

PAGE_SIZE = 20  # templates per /templates page (one message, well under 2,000 characters)


class NoTemplates(MemebotError):
    def __init__(self) -> None:
        super().__init__("The meme engine knows no templates right now; try again later.")


@dataclass(frozen=True)
class Page:
    text: str
    page: int  # 0-based, clamped to the pages there are
    pages: int  # at least 1


def page_text(found: list[TemplateInfo], *, page: int, pages: int, total: int, query: str) -> str:
    shown = discord.utils.escape_markdown(query)
    if not found:
        return f"No template matches `{shown}`." if query else "No templates yet."
    first = page * PAGE_SIZE + 1
    scope = f" matching `{shown}`" if query else ""
    head = f"**Templates{scope}: {first}-{first + len(found) - 1} of {total}**"
    if pages > 1:
        head += f" (page {page + 1}/{pages})"
    lines = [f"`{t.slug}`: {t.name} ({t.box_count} boxes)" for t in found]
    return "\n".join([head, *lines])


async def templates_page(engine: EngineClient, query: str, page: int) -> Page:
    """Page `page` of the templates matching `query` (past the end: the last page)."""
    got = await engine.templates_page(query, PAGE_SIZE, max(0, page) * PAGE_SIZE)
    pages = max(1, -(-got.total // PAGE_SIZE))
    if page >= pages and got.total:  # the catalog shrank since the buttons were made
        page = pages - 1
        got = await engine.templates_page(query, PAGE_SIZE, page * PAGE_SIZE)
    page = max(0, min(page, pages - 1))
    text = page_text(got.templates, page=page, pages=pages, total=got.total, query=query)
    return Page(text, page, pages)


async def random_template(engine: EngineClient, seed: int) -> TemplateInfo:
    """One template drawn uniformly from the whole catalog, the same for the same seed (the
    interaction's id: a test can tell which one it was)."""
    total = (await engine.templates_page("", 1, 0)).total
    if total <= 0:
        raise NoTemplates()
    got = await engine.templates_page("", 1, random.Random(seed).randrange(total))
    if not got.templates:  # the catalog shrank between the two calls
        raise NoTemplates()
    return got.templates[0]
