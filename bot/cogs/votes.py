"""👍/👎 votes through raw reaction events (they arrive for messages not in the cache), deleted
memes and cleared reactions through the raw delete and clear events, and the start-up
reconciliation of votes cast or retracted while the bot was offline."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import discord
from discord.ext import commands

from bot.app import MemeBot
from bot.reconcile import ChannelUnreadable, MessageGone
from bot.votes import reaction_key
from memebot.logs import get_logger

log = get_logger(__name__)
UNKNOWN_MESSAGE = 10008  # Discord's JSON error code; 10003 is Unknown Channel


class Votes(commands.Cog):
    def __init__(self, bot: MemeBot) -> None:
        self.bot = bot
        self._reconcile_task: asyncio.Task[None] | None = None
        self._reconcile_again = False  # a new session came while a pass was running

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        await self.bot.vote_book().reaction(
            message_id=payload.message_id,
            user_id=payload.user_id,
            emoji=payload.emoji,
            added=True,
        )

    @commands.Cog.listener()
    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        await self.bot.vote_book().reaction(
            message_id=payload.message_id,
            user_id=payload.user_id,
            emoji=payload.emoji,
            added=False,
        )

    @commands.Cog.listener()
    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        await self.bot.vote_book().deleted([payload.message_id])

    @commands.Cog.listener()
    async def on_raw_bulk_message_delete(self, payload: discord.RawBulkMessageDeleteEvent) -> None:
        await self.bot.vote_book().deleted(sorted(payload.message_ids))

    @commands.Cog.listener()
    async def on_raw_reaction_clear(self, payload: discord.RawReactionClearEvent) -> None:
        await self.bot.vote_book().cleared(payload.message_id, None)

    @commands.Cog.listener()
    async def on_raw_reaction_clear_emoji(
        self, payload: discord.RawReactionClearEmojiEvent
    ) -> None:
        await self.bot.vote_book().cleared(payload.message_id, payload.emoji)

    @commands.Cog.listener()
    async def on_connect(self) -> None:
        # Each new gateway session (the first, or one that could not resume and so missed
        # events): once it is up, events arrive and queue on the message locks meanwhile.
        if self._reconcile_task is None or self._reconcile_task.done():
            self._reconcile_task = asyncio.create_task(self._reconcile())
        else:  # the running pass may have read before the gap: one more pass after it
            self._reconcile_again = True

    async def _reconcile(self) -> None:
        while True:
            self._reconcile_again = False
            try:
                await self.bot.vote_book().reconcile_recent(
                    self._reactors,
                    counts=self._counts,
                    hours=self.bot.settings.reconcile_hours,
                    mine=self._mine,
                )
            except Exception:
                log.exception("start-up vote reconciliation failed; live votes still count")
            finally:
                await self.bot.reconciliation_finished()
            if not self._reconcile_again:
                return

    def _mine(self, guild_id: int | None) -> bool:
        """With several shards, each reconciles its own guilds (Discord's shard formula)."""
        count = self.bot.shard_count or 1
        return count == 1 or ((guild_id or 0) >> 22) % count == (self.bot.shard_id or 0)

    async def _counts(self, channel_id: int, message_id: int) -> tuple[int, int]:
        """How many others reacted 👍 and 👎 (one GET of the message, counts included)."""
        with unreadable(message_id):
            message = await self.bot.http.get_message(channel_id, message_id)
        book = self.bot.vote_book()
        up = down = 0
        for r in message.get("reactions", []):
            value = book.emoji.value(discord.PartialEmoji.from_dict(r["emoji"]))
            others = int(r["count"]) - (1 if r.get("me") else 0)
            if value == 1:
                up = others
            elif value == -1:
                down = others
        return up, down

    async def _reactors(
        self, channel_id: int, message_id: int, emoji: discord.PartialEmoji
    ) -> set[int]:
        users: set[int] = set()
        after: int | None = None
        while True:
            with unreadable(message_id):
                page = await self.bot.http.get_reaction_users(
                    channel_id, message_id, reaction_key(emoji), 100, after=after
                )
            users.update(int(u["id"]) for u in page)
            if len(page) < 100:
                return users
            after = int(page[-1]["id"])

    async def cog_unload(self) -> None:
        if self._reconcile_task is not None:
            self._reconcile_task.cancel()


@contextlib.contextmanager
def unreadable(message_id: int) -> Iterator[None]:
    """Discord's 404 and 403 on a read as what reconciliation does with them."""
    try:
        yield
    except discord.NotFound as e:
        if e.code == UNKNOWN_MESSAGE:
            raise MessageGone(message_id) from e
        raise ChannelUnreadable(f"404 {e.text or 'Not Found'}") from e  # the channel, the guild
    except discord.Forbidden as e:
        raise ChannelUnreadable(f"403 {e.text or 'Forbidden'}") from e


async def setup(bot: MemeBot) -> None:
    await bot.add_cog(Votes(bot))
