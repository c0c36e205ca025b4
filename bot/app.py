"""The Discord bot: a `commands.Bot` that owns the engine session and the store, loads one cog
per feature, syncs its slash commands only when they changed, and turns every error into a
polite ephemeral reply (the unexpected ones are logged with the command, and the bot goes on).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import user_text
from bot.owners import OwnerCheckFailed, is_owner
from bot.sync import sync_commands
from bot.votes import VoteBook, VoteEmoji
from engine.client import EngineClient
from memebot.filtering import shared_filter
from memebot.logs import get_logger
from memebot.settings import Settings
from memebot.store import Store, upgrade

log = get_logger(__name__)

COGS = (
    "bot.cogs.memes",
    "bot.cogs.votes",
    "bot.cogs.info",
    "bot.cogs.admin",
    "bot.cogs.privacy",
    "bot.cogs.servers",
    "bot.cogs.templates",
    "bot.cogs.help",
)
SHUTDOWN_GRACE = 15.0  # seconds close() waits for memes being posted
AUTOCOMPLETE_TIMEOUT = 2.0  # seconds an autocomplete waits for the engine

# Only what the bot uses: guilds (channel/guild cache, interactions), reactions (votes, clears)
# and guild messages (deletes: MESSAGE_DELETE and MESSAGE_DELETE_BULK come with this intent).
# No message content, members or presences: the privileged intents are not needed.
INTENTS = discord.Intents.none()
INTENTS.guilds = True
INTENTS.guild_reactions = True
INTENTS.guild_messages = True


class NotAllowed(app_commands.CheckFailure):
    """An admin-only command used by someone else; the message is shown to them."""


class MemeTree(app_commands.CommandTree):
    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        assert isinstance(self.client, MemeBot)
        await self.client.on_app_command_error(interaction, error)


class MemeBot(commands.Bot):
    def __init__(
        self,
        settings: Settings,
        *,
        store: Store | None = None,
        sync_state_dir: Path | None = None,
        run_migrations: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,  # slash commands only; no message content
            intents=INTENTS,
            help_command=None,
            allowed_mentions=discord.AllowedMentions.none(),
            tree_cls=MemeTree,
            # No message cache: the intent for deletes also brings every new message, and the
            # bot reads none of them (raw events carry what it needs).
            **({"max_messages": None} | options),
        )
        self.settings = settings
        self._own_store = store is None
        self.store: Store = store or Store.from_url(settings.database_url)
        self.run_migrations = run_migrations
        self.sync_state_dir = sync_state_dir or settings.cache_dir
        self.session: aiohttp.ClientSession | None = None
        self.engine: EngineClient | None = None
        self.quick_engine: EngineClient | None = None
        self.synced: bool | None = None  # after setup: whether commands were (re)synced
        self.reconcile_runs = 0  # one per gateway session (a new session may have missed votes)
        self._reconcile_changed = asyncio.Condition()
        self._vote_book: VoteBook | None = None
        self._warm_filter: asyncio.Task[None] | None = None
        self._busy = 0  # memes being made and posted; close() lets them finish
        self._idle = asyncio.Event()
        self._idle.set()

    # -- lifecycle ---------------------------------------------------------------------------

    async def setup_hook(self) -> None:
        if self.run_migrations:
            await upgrade(self.settings.database_url)
        self.session = aiohttp.ClientSession()
        token = self.settings.engine_secret
        self.engine = EngineClient(
            self.session,
            self.settings.engine_url,
            token=token,
            timeout=self.settings.request_timeout + 5,
        )
        # Autocomplete must answer within Discord's 3 s: a slow engine gives no suggestions.
        self.quick_engine = EngineClient(
            self.session, self.settings.engine_url, token=token, timeout=AUTOCOMPLETE_TIMEOUT
        )
        # The strict filter's model loads in a thread now, not in the first strict /meme.
        self._warm_filter = asyncio.create_task(self._warm())
        for name in COGS:
            await self.load_extension(name)
        self.synced = await self.sync_commands()

    async def _warm(self) -> None:
        try:
            await asyncio.to_thread(shared_filter().warm)
        except ImportError as e:  # strict checks will raise the same, with the command logged
            log.warning("the strict filter's profanity model could not be loaded: %s", e)

    @contextlib.asynccontextmanager
    async def busy(self) -> AsyncIterator[None]:
        """Marks work that close() waits for (a meme half posted would lose its record)."""
        self._busy += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._busy -= 1
            if self._busy == 0:
                self._idle.set()

    async def close(self) -> None:
        try:
            try:
                await asyncio.wait_for(self._idle.wait(), SHUTDOWN_GRACE)
            except TimeoutError:
                log.warning("closing with %d memes still being posted", self._busy)
            await super().close()
            if self._warm_filter is not None:
                await self._warm_filter  # a thread cannot be cancelled: let it end
        finally:
            if self.session is not None:
                await self.session.close()
            if self._own_store:
                await self.store.close()

    async def reconciliation_finished(self) -> None:
        async with self._reconcile_changed:
            self.reconcile_runs += 1
            self._reconcile_changed.notify_all()

    async def wait_reconciled(self, runs: int) -> None:
        """Until `runs` reconciliations (one per gateway session) have finished."""
        async with self._reconcile_changed:
            await self._reconcile_changed.wait_for(lambda: self.reconcile_runs >= runs)

    def vote_book(self) -> VoteBook:
        """The votes (made once the bot knows its own user id, whose reactions do not count)."""
        if self._vote_book is None:
            assert self.user is not None
            emoji = VoteEmoji.from_settings(self.settings.vote_up, self.settings.vote_down)
            self._vote_book = VoteBook(self.store, emoji, bot_user_id=self.user.id)
        return self._vote_book

    def get_engine(self) -> EngineClient:
        if self.engine is None:
            raise RuntimeError("the bot is not set up yet")
        return self.engine

    # -- command sync ------------------------------------------------------------------------

    async def sync_commands(self) -> bool:
        """Sync to MEMEBOT_DISCORD_GUILDS or globally, only when changed (bot/sync.py)."""
        return await sync_commands(self, self.settings.discord_guilds, self.sync_state_dir)

    # -- errors ------------------------------------------------------------------------------

    async def on_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        cause = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        if isinstance(cause, app_commands.CommandOnCooldown):
            text = f"Slow down a little: try again in {max(1, round(cause.retry_after))} s."
        elif isinstance(cause, NotAllowed):
            text = str(cause)
        elif isinstance(cause, app_commands.CheckFailure):
            text = "You cannot use this command here."
        else:
            command = interaction.command.qualified_name if interaction.command else "?"
            text = user_text(cause, where=f"/{command}", context=interaction_context(interaction))
        await reply_error(interaction, text)


def interaction_context(interaction: discord.Interaction) -> str:
    """Where an interaction came from and what it asked, for a log line."""
    options = json.dumps(interaction.data.get("options") if interaction.data else None)[:500]
    return (
        f"guild {interaction.guild_id}, channel {interaction.channel_id}, "
        f"user {interaction.user.id}, options {options}"
    )


POSTED = "memebot.posted"  # interaction.extras key: the meme is the @original message now


async def reply_error(interaction: discord.Interaction, text: str) -> None:
    """An ephemeral reply whatever state the interaction is in. After a public defer the
    "thinking" message is deleted first (the first followup would replace it, public), so the
    error is seen by the user alone; once the meme was posted it *is* that message and stays."""
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(text, ephemeral=True)
            return
        if not interaction.extras.get(POSTED):
            with contextlib.suppress(discord.HTTPException):  # already gone
                await interaction.delete_original_response()
        await interaction.followup.send(text, ephemeral=True)
    except discord.HTTPException:
        log.warning("could not tell user %s: %s", interaction.user.id, text)


async def defer_ephemeral(interaction: discord.Interaction) -> None:
    """Acknowledge within Discord's 3 s (ephemeral "thinking"), unless a check already did."""
    if not interaction.response.is_done():
        await interaction.response.defer(ephemeral=True, thinking=True)


def is_admin(interaction: discord.Interaction, settings: Settings) -> bool:
    """A guild administrator, or a user or role on MEMEBOT_ADMIN_IDS."""
    user = interaction.user
    allowed = set(settings.admin_ids)
    if user.id in allowed:
        return True
    # The member's role ids as the interaction sent them (`roles` would drop any role not in
    # the bot's cache, and the bot does not ask for member data).
    if isinstance(user, discord.Member) and allowed.intersection(user._roles):
        return True
    # The permissions Discord resolved for this interaction (roles and overwrites included),
    # right even when the guild's roles are not in the bot's cache.
    return interaction.guild_id is not None and interaction.permissions.administrator


def admin_only(*, owners: bool = False) -> Any:
    """The bot's own check beside `default_permissions(administrator=True)`: a guild can hand
    the command to anyone in its integration settings, so the bot checks again. `owners`: the
    bot's owners pass too (the commands that reach the shared base model, in any server)."""

    async def predicate(interaction: discord.Interaction) -> bool:
        bot = interaction.client
        assert isinstance(bot, MemeBot)
        if is_admin(interaction, bot.settings):
            return True
        known = bot.owner_id or bot.owner_ids or interaction.user.id in bot.settings.owner_ids
        if owners and not known:
            # Asking Discord who owns the app may take longer than the 3 s an interaction
            # waits for its first answer: acknowledge first (the command then follows up).
            await defer_ephemeral(interaction)
        try:
            if owners and await is_owner(bot, interaction.user, bot.settings.owner_ids):
                return True
        except OwnerCheckFailed as e:  # only a CheckFailure from a check reaches on_error
            raise NotAllowed(str(e)) from e
        raise NotAllowed("Only server administrators (or the bot's allow-list) can do that.")

    return app_commands.check(predicate)
