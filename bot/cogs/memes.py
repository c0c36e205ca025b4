"""/meme, its template autocomplete, and the 🔁 "another one" button (a persistent item: its
custom_id carries the generation id, so it works on messages posted before a restart)."""

from __future__ import annotations

import asyncio
import io
import mimetypes
import time
from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import POSTED, MemeBot, interaction_context, reply_error
from bot.catalog import random_template
from bot.errors import UserError, user_text
from bot.fit import fit_image
from bot.memes import (
    UPLOAD_TEMPLATE,
    CaptionBlocked,
    MemeAsk,
    StartTextBlocked,
    caption_text,
    channel_is_nsfw,
    make_clean_meme,
)
from bot.permissions import MISSING_PERMISSIONS, refused, require_here
from bot.uploads import STILL_NOTE, is_animated
from engine.client import EngineBadRequest, EngineClient, Meme, UnknownTemplate
from engine.schema import TemplateInfo
from memebot.choices import DEFAULT_STYLE, Style
from memebot.errors import MemebotError
from memebot.filtering import level_in_channel
from memebot.logs import get_logger
from memebot.store import GuildSettings, NewGeneration
from memebot.text import Unwritable, fold

log = get_logger(__name__)

IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif")
AUTOCOMPLETE_TTL = 60.0  # seconds a template search is reused (the catalog rarely changes)


def engine_options(meme: Meme) -> dict[str, Any]:
    """The decoding options the engine used (defaults filled in); the seed is stored apart."""
    return {k: v for k, v in meme.options.items() if k != "seed"}


# Discord's answer to a followup or edit once the interaction's token has expired (15 min).
INVALID_WEBHOOK_TOKEN = 50027


class Cooldown:
    """One use per user per `per` seconds, in memory. A refused call gives its use back, so
    a typo (unknown template, wrong channel) does not make the user wait."""

    def __init__(self) -> None:
        self._last: dict[int, float] = {}

    def take(self, user_id: int, per: float) -> None:
        """Uses the user's turn, or UserError saying how long to wait."""
        if per <= 0:
            return
        now = time.monotonic()
        last = self._last.get(user_id)
        if last is not None and now - last < per:
            wait = max(1, round(per - (now - last)))
            raise UserError(f"Slow down a little: try again in {wait} s.")
        if len(self._last) > 10_000:  # forget old entries; they are past any cooldown
            self._last = {u: t for u, t in self._last.items() if now - t < per}
        self._last[user_id] = now

    def refund(self, user_id: int) -> None:
        self._last.pop(user_id, None)


# Refused before anything was made: the user's cooldown turn is given back.
REFUSALS = (
    UserError,
    UnknownTemplate,
    StartTextBlocked,
    CaptionBlocked,
    EngineBadRequest,
    Unwritable,
)
STILL = "memebot.still"  # interaction.extras key: an animated upload, captioned as a still


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 1024:.0f} KiB"


class AnotherOne(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"memebot:again:(?P<gid>[0-9]+)"
):
    """🔁 under a meme: the same template and options with a new seed."""

    def __init__(self, generation_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                label="Another one",
                emoji="🔁",
                style=discord.ButtonStyle.secondary,
                custom_id=f"memebot:again:{generation_id}",
            )
        )
        self.generation_id = generation_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Item[Any],
        match: Any,
    ) -> AnotherOne:
        return cls(int(match["gid"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        bot = interaction.client
        assert isinstance(bot, MemeBot)
        cog = bot.get_cog("Memes")
        assert isinstance(cog, Memes)
        try:
            await cog.again(interaction, self.generation_id)
        except Exception as e:  # noqa: BLE001 (a button's top: user_text logs the unexpected)
            where = f"the 🔁 button (generation {self.generation_id})"
            await reply_error(
                interaction, user_text(e, where=where, context=interaction_context(interaction))
            )


class Memes(commands.Cog):
    def __init__(self, bot: MemeBot) -> None:
        self.bot = bot
        self._templates: dict[str, tuple[float, list[TemplateInfo]]] = {}
        self._meme_cooldown = Cooldown()  # /meme and 🔁 each: one per user per cooldown
        self._again_cooldown = Cooldown()

    @property
    def engine(self) -> EngineClient:
        return self.bot.get_engine()

    async def _guild_settings(self, interaction: discord.Interaction) -> GuildSettings:
        if interaction.guild_id is None:
            return GuildSettings(guild_id=0)
        gs = await self.bot.store.guild_settings(interaction.guild_id)
        if gs.allowed_channel_ids and interaction.channel_id not in gs.allowed_channel_ids:
            where = ", ".join(f"<#{c}>" for c in gs.allowed_channel_ids)
            raise UserError(f"Memes are made in {where} on this server.")
        return gs

    @app_commands.command(name="meme")
    @app_commands.describe(
        template="the meme template (start typing to search), or leave empty and attach an image",
        start_text="the caption starts with these words ('|' ends a box)",
        style=f"how the caption is written (default: the server's, else {DEFAULT_STYLE})",
        boxes="number of text boxes (default: the template's)",
        image="caption your own image instead of a template (JPEG, PNG, WebP or GIF)",
        text="your own caption, drawn exactly as written ('|' between boxes)",
    )
    @app_commands.guild_only()
    async def meme(
        self,
        interaction: discord.Interaction,
        template: str | None = None,
        start_text: app_commands.Range[str, 1, 200] | None = None,
        style: Style | None = None,
        boxes: app_commands.Range[int, 1, 8] | None = None,
        image: discord.Attachment | None = None,
        text: app_commands.Range[str, 1, 200] | None = None,
    ) -> None:
        """Make a meme: the bot writes the caption with its own neural network."""
        self._meme_cooldown.take(interaction.user.id, self.bot.settings.meme_cooldown)
        try:
            await self._meme(interaction, template, start_text, style, boxes, image, text)
        except REFUSALS:
            self._meme_cooldown.refund(interaction.user.id)
            raise

    async def _meme(
        self,
        interaction: discord.Interaction,
        template: str | None,
        start_text: str | None,
        style: Style | None,
        boxes: int | None,
        image: discord.Attachment | None,
        text: str | None = None,
    ) -> None:
        require_here("meme", interaction)  # before any work: a meme nobody can vote on
        if template is not None and image is not None:
            raise UserError("Give either a template or an image (not both).")
        ctype = self._check_attachment(image) if image is not None else ""
        start_text = fold(start_text or "")  # phone punctuation, accents; Unwritable names a 😀
        written = fold(text or "").strip()  # the user's own caption, case kept
        if text is not None and not written.strip("| "):
            raise UserError("That caption has no words; write some text ('|' between boxes).")
        # Defer before any database or engine call: Discord drops an interaction that has no
        # answer within 3 s. A refusal below is then an ephemeral followup (reply_error).
        await interaction.response.defer(thinking=True)
        gs = await self._guild_settings(interaction)
        if template is None and image is None:  # neither: a template drawn at random
            template = (await random_template(self.engine, interaction.id)).slug
        req = MemeAsk(
            template=template or UPLOAD_TEMPLATE,
            start_text=start_text,
            style=style or gs.default_style or DEFAULT_STYLE,
            boxes=boxes,
            text=written,
        )
        if image is None:
            await self.post(
                interaction,
                req,
                gs,
                lambda seed: self._template_meme(req, seed, interaction.guild_id),
                again=not written,  # 🔁 of a caption the user wrote would make the same meme
            )
        else:
            data = await image.read()
            if await asyncio.to_thread(is_animated, data):
                interaction.extras[STILL] = True
            await self.post(
                interaction,
                req,
                gs,
                lambda seed: self.engine.caption_upload(
                    data,
                    filename=image.filename,
                    content_type=ctype,
                    options=req.engine_options(seed),
                    server=interaction.guild_id,
                ),
                again=False,
            )

    def _check_attachment(self, image: discord.Attachment) -> str:
        """The image's content type, or UserError saying what is wrong with the file."""
        limit = self.bot.settings.max_upload_bytes
        # Discord leaves content_type out for some uploads: the file name then tells.
        ctype = (image.content_type or "").split(";")[0].strip().lower()
        ctype = ctype or (mimetypes.guess_type(image.filename)[0] or "")
        if ctype not in IMAGE_TYPES:
            raise UserError(
                f"`{image.filename}` is not an image I can caption "
                f"({ctype or 'unknown type'}); use JPEG, PNG, WebP or GIF."
            )
        if image.size > limit:
            raise UserError(
                f"`{image.filename}` is {_size(image.size)}; the limit is {_size(limit)}."
            )
        return ctype

    async def _template_meme(self, req: MemeAsk, seed: int, server: int | None) -> Meme:
        # The guild names the taste the engine picks the caption by (a server's own votes).
        return await self.engine.meme(req.template, req.engine_options(seed), server=server)

    async def post(
        self,
        interaction: discord.Interaction,
        req: MemeAsk,
        gs: GuildSettings,
        generate: Callable[[int], Awaitable[Meme]],
        *,
        again: bool = True,
    ) -> None:
        """Generate (filtered), store, post the image with its caption, add the vote emoji.
        close() waits for this: a meme half posted would lose its record or its reactions."""
        async with self.bot.busy():
            # A guild's `off` holds in age-restricted channels only.
            level = level_in_channel(gs.filter_level, nsfw=channel_is_nsfw(interaction.channel))
            meme = await make_clean_meme(
                generate, start_text=req.start_text, level=level, written=req.text
            )
            gid = await self.bot.store.record_generation(
                NewGeneration(
                    guild_id=interaction.guild_id,
                    channel_id=interaction.channel_id,
                    user_id=interaction.user.id,
                    template=meme.template.slug
                    if req.template != UPLOAD_TEMPLATE
                    else UPLOAD_TEMPLATE,
                    boxes=meme.boxes,
                    options=req.stored_options() | {"engine": engine_options(meme)},
                    seed=meme.seed,
                    model_version=meme.model_version,
                    timings=meme.timings_ms,
                )
            )
            view = discord.ui.View(timeout=None)
            if again:
                view.add_item(AnotherOne(gid))
            # Over the guild's upload limit Discord refuses the followup (413): re-encode.
            image = fit_image(meme.image, meme.filename, interaction.filesize_limit)
            try:
                msg = await self._send_fitted(interaction, meme, image, view)
            except discord.HTTPException as e:
                if e.code == INVALID_WEBHOOK_TOKEN:
                    # Made after the interaction's 15 minutes: nothing can answer it now.
                    log.warning("meme #%s was ready after its interaction expired", gid)
                    return
                if e.status == 403 and e.code == MISSING_PERMISSIONS:
                    # The interaction's permissions allowed it, Discord did not (a stale
                    # state, an overwrite): the generation stays stored, unposted.
                    raise refused(
                        e,
                        doing="post your meme",
                        act="answer",  # a followup: only its file needs a permission
                        files=True,
                        kept="Your meme was made and kept, but not posted.",
                        context=interaction_context(interaction),
                    ) from e
                raise
            # The followup replaced the "thinking" message: an error from here on must not
            # delete it (reply_error), it is the meme.
            interaction.extras[POSTED] = True
            book = self.bot.vote_book()
            await book.attach(gid, msg.id)
            try:
                for emoji in (book.emoji.up, book.emoji.down):
                    await msg.add_reaction(emoji)
            except discord.Forbidden as e:
                # Told, not only logged: whoever made the meme sees it without 👍/👎 and
                # would take votes to be off, while the reactions people add themselves
                # still count; the meme stays (it was posted, and votes on it are kept).
                notice = refused(
                    e,
                    doing="add the 👍/👎 vote reactions",
                    act="reaction",
                    kept="The meme stays, and votes still count when people add the "
                    "reactions themselves.",
                    context=interaction_context(interaction),
                )
                await interaction.followup.send(str(notice), ephemeral=True)
            if interaction.extras.get(STILL):
                await interaction.followup.send(STILL_NOTE, ephemeral=True)

    async def _send_fitted(
        self,
        interaction: discord.Interaction,
        meme: Meme,
        image: tuple[bytes, str],
        view: discord.ui.View,
    ) -> discord.WebhookMessage:
        """Posts the meme; over Discord's own upload limit (413: the limit the interaction
        named was not Discord's) once more at half the size."""
        try:
            return await self._send_meme(interaction, meme, image, view)
        except discord.HTTPException as e:
            if e.status != 413:
                raise
        image = fit_image(image[0], image[1], len(image[0]) // 2)
        return await self._send_meme(interaction, meme, image, view)

    @staticmethod
    async def _send_meme(
        interaction: discord.Interaction,
        meme: Meme,
        image: tuple[bytes, str],
        view: discord.ui.View,
    ) -> discord.WebhookMessage:
        file = discord.File(
            io.BytesIO(image[0]), filename=image[1], description=meme.alt_text[:1024]
        )
        return await interaction.followup.send(
            content=caption_text(meme), file=file, view=view, wait=True
        )

    async def again(self, interaction: discord.Interaction, generation_id: int) -> None:
        self._again_cooldown.take(interaction.user.id, self.bot.settings.meme_cooldown)
        try:
            await self._again(interaction, generation_id)
        except REFUSALS:
            self._again_cooldown.refund(interaction.user.id)
            raise

    async def _again(self, interaction: discord.Interaction, generation_id: int) -> None:
        require_here("again", interaction)
        await interaction.response.defer(thinking=True)  # before the database (Discord's 3 s)
        info = await self.bot.store.generation(generation_id)
        if info is None:
            raise UserError("That meme is no longer in my records, so I cannot make another.")
        gs = await self._guild_settings(interaction)
        req = MemeAsk.from_stored(info.template, info.options)
        await self.post(
            interaction, req, gs, lambda seed: self._template_meme(req, seed, interaction.guild_id)
        )

    @meme.autocomplete("template")
    async def template_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await self.template_choices(current)

    async def template_choices(self, current: str) -> list[app_commands.Choice[str]]:
        """Templates matching what the user typed (also /top's and /templates' suggestions)."""
        query = current.strip().lower()[:100]
        cached = self._templates.get(query)
        now = time.monotonic()
        if cached is None or now - cached[0] > AUTOCOMPLETE_TTL:
            quick = self.bot.quick_engine
            assert quick is not None  # set up with the engine
            try:
                found = await quick.templates(query, 25)
            except MemebotError:
                return []  # autocomplete cannot show an error; the command will
            if len(self._templates) > 512:
                self._templates.clear()
            self._templates[query] = cached = (now, found)
        return [app_commands.Choice(name=t.name[:100], value=t.slug) for t in cached[1][:25]]


async def setup(bot: MemeBot) -> None:
    await bot.add_cog(Memes(bot))
    bot.add_dynamic_items(AnotherOne)
