"""Admin commands: /retrain, /model (info, rollback) and the per-guild /settings.

Guarded twice: `default_permissions(administrator=True)` hides them from members, and the bot
checks again (a guild may hand a command to others in its integration settings). The shared
base model serves every server, so retraining or rolling it back (`base:true`) is for the bot's
owners alone (bot/owners.py); without `base` the commands are about the server's own taste."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import MemeBot, NotAllowed, admin_only, defer_ephemeral, interaction_context
from bot.errors import public_text
from bot.memes import channel_is_nsfw
from bot.owners import is_owner, owner_only_text
from bot.permissions import MISSING_PERMISSIONS, refused, require_here
from engine.client import EngineError
from memebot.choices import DEFAULT_RUN_MODE, DEFAULT_STYLE, FilterLevel, RunMode, Style
from memebot.filtering import check_level_allowed
from memebot.logs import get_logger
from memebot.store import GuildSettings, RunInfo, RunInProgress
from retrain.cooldown import TasteCooldown, last_start
from retrain.promotion import rollback as rollback_model
from retrain.queue import RunQueue
from retrain.requests import describe, request_run, watch_run
from retrain.taste_curation import curate_guild
from retrain.taste_requests import describe_taste, request_taste_run, rollback_taste

log = get_logger(__name__)

RETRAIN_BASE = "retrain the shared model"
ROLLBACK_BASE = "roll back the shared model"


def format_settings(gs: GuildSettings) -> str:
    channels = ", ".join(f"<#{c}>" for c in gs.allowed_channel_ids) or "every channel"
    return "\n".join(
        [
            "**Meme settings for this server**",
            f"Content filter: `{gs.filter_level}`"
            + (
                " (in age-restricted channels; `standard` elsewhere)"
                if gs.filter_level == "off"
                else ""
            ),
            f"Default style: `{gs.default_style or DEFAULT_STYLE}`",
            f"Memes allowed in: {channels}",
        ]
    )


class Admin(commands.Cog):
    """/retrain queues a run (retrain.requests) that `memebot worker` executes elsewhere; the
    bot posts a progress message in the channel and edits it from the run's record (stage,
    epoch, val loss, ETA, then the gate's numbers) until the run ends. The bot imports no
    training code: the run is only a row in the store and a message on the queue."""

    poll_interval = 5.0  # seconds between reads of a run's progress

    def __init__(self, bot: MemeBot) -> None:
        self.bot = bot
        self._watchers: dict[int, asyncio.Task[None]] = {}
        self._taste_cooldown = TasteCooldown(bot.settings.taste_cooldown, self._last_taste_start)

    async def _last_taste_start(self, guild_id: int) -> datetime | None:
        return last_start(await self.bot.store.runs(20, kind="taste", guild_id=guild_id))

    async def cog_load(self) -> None:
        # Runs queued or running when the bot (re)started: keep editing their messages.
        runs = await self.bot.store.runs(50)
        for current in [r for r in runs if r.in_progress]:
            if current.channel_id and current.message_id:
                channel = self.bot.get_partial_messageable(current.channel_id)
                self._watch(current, channel.get_partial_message(current.message_id))

    async def cog_unload(self) -> None:
        for task in self._watchers.values():
            task.cancel()

    def _watch(self, run: RunInfo, message: discord.PartialMessage | discord.Message) -> None:
        failed: list[int] = []  # the first failed edit is logged, later ones are not

        async def edit(text: str) -> None:
            try:
                # A failed run's error may name an exception: the log gets it, not the channel.
                await message.edit(content=public_text(text, where=f"retrain run #{run.id}")[:2000])
            except discord.HTTPException as e:  # deleted, or no access: the run goes on
                if not failed:
                    log.warning("cannot edit retrain run #%s's message: %s", run.id, e)
                failed.append(e.status)

        async def follow() -> None:
            try:
                await watch_run(self.bot.store, run.id, edit, interval=self.poll_interval)
            except Exception:  # the top of a background task: log, never crash the bot
                log.exception("following retrain run #%s failed", run.id)
            finally:
                self._watchers.pop(run.id, None)

        if run.id not in self._watchers:
            self._watchers[run.id] = asyncio.create_task(follow())

    async def require_owner(self, interaction: discord.Interaction, action: str) -> None:
        """NotAllowed, naming who can, unless the caller owns the bot."""
        if not await is_owner(self.bot, interaction.user, self.bot.settings.owner_ids):
            raise NotAllowed(owner_only_text(action))

    async def retrain_taste(self, interaction: discord.Interaction) -> None:
        """`/retrain` without `base`: the server's own taste from its votes (retrain/taste_run.py).
        Refused first, in this order: too few votes (how many more), one of its taste runs
        already going, its budget (retrain/cooldown.py, MEMEBOT_TASTE_COOLDOWN: how long to
        wait). Then, as for a base run, the progress message is posted and only then the run
        queued; a refused post (403) or request gives the budget back."""
        await defer_ephemeral(interaction)
        assert interaction.guild_id is not None  # guild_only
        guild_id, store = interaction.guild_id, self.bot.store
        await curate_guild(store, guild_id)  # NotEnoughVotes
        current = await store.current_run("taste", guild_id=guild_id)
        if current is not None:
            raise RunInProgress(current)
        await self._taste_cooldown.begin(guild_id)  # CoolingDown
        try:
            run = await self._queue_with_progress(
                interaction,
                f"{interaction.user.mention} asked to retrain this server's taste.",
                lambda queue, message_id: request_taste_run(
                    store,
                    queue,
                    guild_id,
                    requested_by=f"{interaction.user.name} ({interaction.user.id})"[:100],
                    channel_id=interaction.channel_id,
                    message_id=message_id,
                ),
            )
        except BaseException:  # nothing was queued (or it could not be shown): budget back
            self._taste_cooldown.undo(guild_id)
            raise
        await interaction.followup.send(
            f"Taste run #{run.id} queued; its progress is posted in this channel.",
            ephemeral=True,
        )

    async def _queue_with_progress(
        self,
        interaction: discord.Interaction,
        header: str,
        request: Callable[[RunQueue, int], Awaitable[RunInfo]],
    ) -> RunInfo:
        """Posts the progress message, then queues the run (`request(queue, message id)`) and
        follows it. Posted first: a run whose progress nobody could see is not queued at all.
        If Discord refuses the post (403, although the interaction's permissions allowed it),
        PostRefused names the permission; if the request is refused (a run going, nothing to
        train on, the queue down), the message is deleted and the refusal is the answer."""
        channel = interaction.channel
        assert channel is not None  # guild_only
        try:
            message = await channel.send(f"{header}\nQueueing the run…")  # type: ignore[union-attr]
        except discord.Forbidden as e:
            if e.code != MISSING_PERMISSIONS:
                raise
            raise refused(
                e,
                doing="post the retrain's progress",
                act="message",
                in_thread=isinstance(channel, discord.Thread),
                kept="Nothing was queued.",
                context=interaction_context(interaction),
            ) from e
        try:
            # huey's storage is synchronous (it may create its tables): off the event loop.
            queue = await asyncio.to_thread(RunQueue, self.bot.settings.queue_url)
            try:
                run = await request(queue, message.id)
            finally:
                await asyncio.to_thread(queue.close)
        except BaseException:
            with contextlib.suppress(discord.HTTPException):  # already gone: nothing to undo
                await message.delete()
            raise
        # "Queueing…" becomes the run's state; an edit that fails here is the watcher's to log
        # (it edits again at once, and logs its first failure).
        with contextlib.suppress(discord.HTTPException):
            await message.edit(content=f"{header}\n{describe(run)}")
        self._watch(run, message)
        return run

    async def rollback_taste(self, interaction: discord.Interaction) -> None:
        """`/model rollback:true` without `base`: the server's taste back one version (the
        store, then the pointer engines follow); NoTaste when it has none of its own."""
        assert interaction.guild_id is not None  # guild_only
        back = await rollback_taste(self.bot.store, self.bot.settings, interaction.guild_id)
        text = (
            "Rolled this server's taste back to the default (it has no taste of its own now)."
            if back is None
            else f"Rolled this server's taste back to v{back.version}."
        )
        await interaction.followup.send(text, ephemeral=True)

    @app_commands.command(name="retrain")
    @app_commands.describe(
        mode="finetune (default): continue from the live model, minutes; full: from scratch",
        base="retrain the shared model every server uses (the bot's owner only)",
    )
    @app_commands.default_permissions(administrator=True)
    @app_commands.guild_only()
    @admin_only(owners=True)
    async def retrain(
        self, interaction: discord.Interaction, mode: RunMode = DEFAULT_RUN_MODE, base: bool = False
    ) -> None:
        """Retrain from the votes; base:true retrains the shared model (the bot's owner only)."""
        # Its progress is posted in this channel: refuse before anything is queued if it cannot.
        require_here("retrain", interaction)
        if not base:
            await self.retrain_taste(interaction)
            return
        await defer_ephemeral(interaction)
        await self.require_owner(interaction, RETRAIN_BASE)
        # No new ratings, or a run already going: a MemebotError, answered ephemerally.
        run = await self._queue_with_progress(
            interaction,
            f"{interaction.user.mention} asked for a model retrain.",
            lambda queue, message_id: request_run(
                self.bot.store,
                queue,
                mode=mode,
                requested_by=f"{interaction.user.name} ({interaction.user.id})"[:100],
                guild_id=interaction.guild_id,
                channel_id=interaction.channel_id,
                message_id=message_id,
            ),
        )
        await interaction.followup.send(
            f"Retrain run #{run.id} queued; its progress is posted in this channel.",
            ephemeral=True,
        )

    @app_commands.command(name="model")
    @app_commands.describe(
        rollback="go back to the previous version (no gate)",
        base="with rollback: the shared model every server uses (the bot's owner only)",
    )
    @app_commands.default_permissions(administrator=True)
    @app_commands.guild_only()
    @admin_only(owners=True)
    async def model(
        self, interaction: discord.Interaction, rollback: bool = False, base: bool = False
    ) -> None:
        """Which caption model is serving, and the versions kept (admins only)."""
        await defer_ephemeral(interaction)
        if rollback and not base:
            await self.rollback_taste(interaction)
            return
        lines = []
        if rollback:
            await self.require_owner(interaction, ROLLBACK_BASE)
            # Every engine reloads the previous version, then the store and models/active
            # follow; a MemebotError (nothing to go back to, an engine refusing) is the answer.
            active, results = await rollback_model(self.bot.store, self.bot.settings)
            lines.append(f"Rolled back to `{active.version}`.")
            lines += [f"{r.url}: {r.status}" for r in results if r.status != "ok"]
        try:
            serving = (await self.bot.get_engine().ready()).model_version
        except EngineError:  # the answer says the engine is not reachable
            serving = "the engine is not reachable"
        versions = await self.bot.store.model_versions()
        assert interaction.guild_id is not None  # guild_only
        lines.append(describe_taste(await self.bot.store.active_taste(interaction.guild_id)))
        lines.append(f"Engine serves: `{serving}`")
        lines += [
            f"{'▶' if v.active else '•'} `{v.version}` ({v.created_at:%Y-%m-%d})"
            + (f" by {v.created_by}" if v.created_by else "")
            for v in versions[:10]
        ] or ["No trained versions recorded yet."]
        await interaction.followup.send("\n".join(lines), ephemeral=True)

    @app_commands.command(name="settings")
    @app_commands.describe(
        content_filter="standard (slurs, sex, self-harm), strict (any swearing), off (NSFW only)",
        default_style="the style /meme uses when none is given",
        allow_channel="add a channel where /meme works (none set: every channel)",
        remove_channel="remove a channel from the list",
        all_channels="true: /meme works in every channel again",
    )
    @app_commands.default_permissions(administrator=True)
    @app_commands.guild_only()
    @admin_only()
    async def settings(
        self,
        interaction: discord.Interaction,
        content_filter: FilterLevel | None = None,
        default_style: Style | None = None,
        allow_channel: discord.TextChannel | None = None,
        remove_channel: discord.TextChannel | None = None,
        all_channels: bool = False,
    ) -> None:
        """Show or change this server's meme settings (admins only)."""
        assert interaction.guild_id is not None  # guild_only
        await interaction.response.defer(ephemeral=True, thinking=True)  # Discord's 3 s
        store = self.bot.store
        gs = await store.guild_settings(interaction.guild_id)
        changes: dict[str, object] = {}
        if content_filter is not None:
            check_level_allowed(content_filter, nsfw=channel_is_nsfw(interaction.channel))
            changes["filter_level"] = content_filter
        if default_style is not None:
            changes["default_style"] = default_style
        channels = set(gs.allowed_channel_ids)
        if all_channels:
            channels.clear()
        if allow_channel is not None:
            channels.add(allow_channel.id)
        if remove_channel is not None:
            channels.discard(remove_channel.id)
        if channels != set(gs.allowed_channel_ids):
            changes["allowed_channel_ids"] = sorted(channels)
        if changes:
            gs = await store.update_guild_settings(interaction.guild_id, **changes)
        await interaction.followup.send(format_settings(gs), ephemeral=True)


async def setup(bot: MemeBot) -> None:
    await bot.add_cog(Admin(bot))
