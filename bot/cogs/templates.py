"""/templates: the whole catalog, a page at a time, with ◀/▶ buttons (persistent items: the
custom_id carries the page and the query, so they work after a restart), and a `query` that
autocompletes from the engine like /meme's template."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import POSTED, MemeBot, interaction_context, reply_error
from bot.catalog import Page, templates_page
from bot.cogs.memes import INVALID_WEBHOOK_TOKEN, Memes
from bot.errors import user_text
from memebot.logs import get_logger

log = get_logger(__name__)

QUERY_IN_ID = 60  # characters of the query kept in a button's custom_id (at most 100 in all)


class TemplatePage(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"memebot:tpl:(?P<dir>[pn]):(?P<page>[0-9]+):(?P<q>.*)",
):
    """◀ or ▶ under a /templates page: shows page `page` of the templates matching `q`."""

    def __init__(self, direction: str, page: int, query: str, *, disabled: bool = False) -> None:
        query = query[:QUERY_IN_ID]
        super().__init__(
            discord.ui.Button(
                label="Previous" if direction == "p" else "Next",
                emoji="◀" if direction == "p" else "▶",
                style=discord.ButtonStyle.secondary,
                custom_id=f"memebot:tpl:{direction}:{page}:{query}",
                disabled=disabled,
            )
        )
        self.page, self.query = page, query

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Item[Any],
        match: Any,
        /,
    ) -> TemplatePage:
        return cls(match["dir"], int(match["page"]), match["q"])

    async def callback(self, interaction: discord.Interaction) -> None:
        bot = interaction.client
        assert isinstance(bot, MemeBot)
        # The engine may be slow: acknowledge first (Discord's 3 s), then edit the page.
        await interaction.response.defer()
        # @original is the pager itself, not a "thinking" message: an error must not delete it.
        interaction.extras[POSTED] = True
        try:
            page = await templates_page(bot.get_engine(), self.query, self.page)
        except Exception as e:  # noqa: BLE001 (a button's top: user_text logs the unexpected)
            where = f"the /templates page button (page {self.page})"
            await reply_error(
                interaction, user_text(e, where=where, context=interaction_context(interaction))
            )
            return
        await show_page(interaction, page, self.query)


async def show_page(interaction: discord.Interaction, page: Page, query: str) -> None:
    """The page in the pager message the button is on; if that message cannot be edited (it
    was deleted or dismissed: 404; refused: 403), as a new reply only the user sees. After the
    press's token expired (401) nothing can answer: one log line."""
    view = pager(page, query)
    try:
        await interaction.edit_original_response(content=page.text, view=view)
    except discord.HTTPException as e:
        if e.code == INVALID_WEBHOOK_TOKEN:
            log.warning(
                "/templates page %s was ready after its button's interaction expired (%s)",
                page.page + 1,
                interaction_context(interaction),
            )
            return
        if e.status not in (403, 404):
            raise
        await interaction.followup.send(page.text, view=view, ephemeral=True)


def pager(page: Page, query: str) -> discord.ui.View:
    """The ◀/▶ buttons for `page` (none when everything fits on one page)."""
    view = discord.ui.View(timeout=None)
    if page.pages > 1:
        view.add_item(TemplatePage("p", max(0, page.page - 1), query, disabled=page.page == 0))
        last = page.page >= page.pages - 1
        view.add_item(TemplatePage("n", min(page.pages - 1, page.page + 1), query, disabled=last))
    return view


class Templates(commands.Cog):
    def __init__(self, bot: MemeBot) -> None:
        self.bot = bot

    @app_commands.command(name="templates")
    @app_commands.describe(query="part of a template's name (start typing to search; empty: all)")
    async def templates(
        self, interaction: discord.Interaction, query: app_commands.Range[str, 0, 100] = ""
    ) -> None:
        """Browse the meme templates the bot knows, a page at a time."""
        # Deferred before the engine call: Discord drops an interaction with no answer in 3 s.
        await interaction.response.defer(ephemeral=True, thinking=True)
        query = query.strip()
        page = await templates_page(self.bot.get_engine(), query, 0)
        await interaction.followup.send(page.text, view=pager(page, query), ephemeral=True)

    @templates.autocomplete("query")
    async def query_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        memes = self.bot.get_cog("Memes")
        assert isinstance(memes, Memes)  # loaded with the other cogs
        return await memes.template_choices(current)


async def setup(bot: MemeBot) -> None:
    await bot.add_cog(Templates(bot))
    bot.add_dynamic_items(TemplatePage)
