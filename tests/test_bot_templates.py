"""What people expect of a meme bot, against the real bot, the Discord stand-in and the real
engine: /templates pages through every template with its buttons (a pager that cannot be
edited any more gets the page as a new reply; an engine error leaves it be), /templates and
/top autocomplete, /meme without a template draws one, a caption written by hand is kept as
is, and an animated upload is said to become still."""

from __future__ import annotations

import asyncio
import io
import logging
import random
from pathlib import Path

import pytest
from PIL import Image

from bot.catalog import PAGE_SIZE
from bot.uploads import STILL_NOTE
from engine.catalog import Catalog
from harness.bot import run_scenario as run
from harness.bot import running_bot, vote_book
from harness.discord_standin import Attachment, DiscordStandIn, Interaction, Sent
from memebot.settings import Settings
from memebot.store import Store

pytestmark = pytest.mark.slow
CATALOG = [t.slug for t in Catalog.load().templates]  # the engine's order


async def meme(api: DiscordStandIn, **options: object) -> Interaction:
    return await api.answered(await api.invoke("meme", dict(options)))


def buttons(msg: Sent) -> dict[str, dict[str, object]]:
    """The message's buttons by label."""
    return {b["label"]: b for row in msg.components for b in row["components"]}


async def reacted(api: DiscordStandIn, msg: Sent) -> None:
    """Until the bot added both vote emoji (the meme is stored by then)."""
    await api.wait_until(lambda: len(api.bot_reactions(msg.id)) == 2)


async def suggested(api: DiscordStandIn, rec: Interaction) -> None:
    await api.wait_until(lambda: rec.choices is not None)


def slugs(text: str) -> list[str]:
    return [line.split("`")[1] for line in text.split("\n")[1:]]


def gif(frames: int) -> bytes:
    images = [Image.new("RGB", (64, 48), (40 * i % 256, 90, 200)) for i in range(frames)]
    buf = io.BytesIO()
    images[0].save(buf, "GIF", save_all=frames > 1, append_images=images[1:], duration=100)
    return buf.getvalue()


def test_templates_pages_through_every_template_and_autocompletes(
    tiny_model: Path, tmp_path: Path
) -> None:
    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        async with running_bot(api, s, store):
            rec = await api.answered(await api.invoke("templates"))
            (page,) = rec.replies
            assert page.ephemeral and f"1-{PAGE_SIZE} of {len(CATALOG)}" in page.content
            assert buttons(page)["Previous"].get("disabled") is True
            seen = slugs(page.content)
            msg_id = page.id
            while not buttons(page)["Next"].get("disabled"):
                press = await api.press_button(msg_id, str(buttons(page)["Next"]["custom_id"]))
                await api.answered(press)
                assert press.callbacks[0]["type"] == 6, "acknowledged before the engine call"
                assert press.original is not None
                page = press.original
                seen += slugs(page.content)
                msg_id = page.id
            assert seen == CATALOG, "every template once, in the catalog's order"
            back = await api.press_button(msg_id, str(buttons(page)["Previous"]["custom_id"]))
            await api.answered(back)
            assert back.original is not None
            assert slugs(back.original.content) == CATALOG[-2 * PAGE_SIZE : -PAGE_SIZE]
            one = await api.answered(await api.invoke("templates", {"query": "two"}))
            assert "`two-buttons`: Two Buttons (2 boxes)" in one.replies[0].content
            assert one.replies[0].components == [], "one page: no buttons"
            none = await api.answered(await api.invoke("templates", {"query": "zzzzqqq"}))
            assert "No template matches `zzzzqqq`" in none.replies[0].content
            for command, option in (("templates", "query"), ("top", "template")):
                ac = await api.autocomplete(command, {option: "two"}, option)
                await suggested(api, ac)
                assert ac.choices is not None
                assert {"name": "Two Buttons", "value": "two-buttons"} in ac.choices, command

    run(tiny_model, tmp_path, scenario)


def test_a_pager_that_cannot_be_edited_gets_the_page_as_a_new_reply(
    tiny_model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        async with running_bot(api, s, store):
            (pager,) = (await api.answered(await api.invoke("templates"))).replies
            press = await api.press_button(pager.id, str(buttons(pager)["Next"]["custom_id"]))
            api.messages.pop(pager.id)  # dismissed while the page loads: its edit is a 404
            await api.answered(press)
            (page,) = press.followups
            assert page.ephemeral and f"{PAGE_SIZE + 1}-{2 * PAGE_SIZE} of" in page.content
            assert buttons(page)["Previous"].get("disabled") is False, "it pages on"
            assert slugs(page.content) == CATALOG[PAGE_SIZE : 2 * PAGE_SIZE]
            # The press's token expires before the page is ready: nothing can answer it.
            later = await api.press_button(page.id, str(buttons(page)["Next"]["custom_id"]))
            api.token_lifetime = 0.0
            async with asyncio.timeout(30):
                while not any("expired" in r.getMessage() for r in caplog.records):
                    await asyncio.sleep(0.02)
            assert later.callbacks[0]["type"] == 6 and not later.followups and not later.edited
            assert slugs(page.content) == CATALOG[PAGE_SIZE : 2 * PAGE_SIZE], "not edited"

    with caplog.at_level(logging.WARNING):
        run(tiny_model, tmp_path, scenario)
    lines = [r for r in caplog.records if "expired" in r.getMessage()]
    assert len(lines) == 1 and lines[0].exc_info is None
    assert not [r for r in caplog.records if r.exc_info], "no traceback"


def test_an_engine_error_on_a_page_button_keeps_the_pager(tmp_path: Path) -> None:
    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        next_page = {"type": 2, "style": 2, "label": "Next", "custom_id": "memebot:tpl:n:1:"}
        pager = api.post_message(
            api.channel_ids[0], "page 1", components=[{"type": 1, "components": [next_page]}]
        )
        async with running_bot(api, s, store):  # no engine listens
            press = await api.answered(await api.press_button(pager.id, "memebot:tpl:n:1:"))
            (told,) = press.followups
            assert told.ephemeral and "not reachable" in told.content
            assert pager.id in api.messages and not press.deleted_original, "the pager stays"
            assert pager.content == "page 1"

    run(Path("unused"), tmp_path, scenario, engine=False, engine_url="http://127.0.0.1:9")


def test_meme_without_a_template_draws_one_and_a_written_caption_is_kept(
    tiny_model: Path, tmp_path: Path
) -> None:
    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        async with running_bot(api, s, store) as bot:
            picks = []
            for _ in range(3):
                rec = await meme(api)
                (msg,) = rec.followups
                await reacted(api, msg)
                gen = await store.generation_by_message(msg.id)
                assert gen is not None
                # Seeded by the interaction: the one the engine's catalog order gives.
                assert gen.template == CATALOG[random.Random(rec.id).randrange(len(CATALOG))]
                picks.append(gen.template)
            assert all(p in CATALOG for p in picks)

            rec = await meme(api, template="two-buttons", text="Don’t PANIC|it's Fine")
            (msg,) = rec.followups
            assert msg.content == "> Don't PANIC\n> it's Fine", "case kept, apostrophe folded"
            assert msg.components == [], "no 🔁: it would make the same meme"
            assert msg.attachments[0].description == "Don't PANIC / it's Fine"
            await api.wait_until(lambda: len(api.bot_reactions(msg.id)) == 2)
            gen = await store.generation_by_message(msg.id)
            assert gen is not None and gen.boxes == ["Don't PANIC", "it's Fine"]
            assert gen.options["text"] == "Don't PANIC|it's Fine" and gen.template == "two-buttons"
            await api.react(msg.id, "👍", 41)
            await vote_book(bot).wait_handled(1)
            assert await store.votes(gen.id) == {41: 1}, "votes count like any meme's"

            too_many = await meme(api, template="two-buttons", text="a|b|c")
            assert too_many.replies[-1].ephemeral and "text" in too_many.replies[-1].content
            empty = await meme(api, template="two-buttons", text=" | ")
            assert "no words" in empty.replies[-1].content and not empty.deferred
            await store.update_guild_settings(api.guild_id, filter_level="strict")
            rude = await meme(api, template="two-buttons", text="holy|shit")
            assert rude.replies[-1].ephemeral and "content filter" in rude.replies[-1].content
            assert (await store.stats(api.guild_id)).generations == 4

    run(tiny_model, tmp_path, scenario, meme_cooldown=0)


def test_an_animated_upload_is_captioned_still_and_the_user_is_told(
    tiny_model: Path, tmp_path: Path
) -> None:
    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        async with running_bot(api, s, store):
            moving = await meme(api, image=Attachment("dance.gif", "image/gif", gif(4), None))
            await api.wait_until(lambda: len(moving.followups) == 2)
            posted, note = moving.followups
            assert posted.attachments and not posted.ephemeral
            assert Image.open(io.BytesIO(posted.attachments[0].data)).format == "JPEG"
            assert note.ephemeral and note.content == STILL_NOTE
            still = await meme(api, image=Attachment("still.gif", "image/gif", gif(1), None))
            await api.wait_until(lambda: len(api.bot_reactions(still.followups[0].id)) == 2)
            assert [f.content for f in still.followups if f.ephemeral] == []
            # A caption of one's own on one's own image: kept as written too.
            own = await meme(
                api, image=Attachment("still.gif", "image/gif", gif(1), None), text="My Cat|Sir"
            )
            assert own.followups[0].content == "> My Cat\n> Sir"
            await reacted(api, own.followups[0])
            gen = await store.generation_by_message(own.followups[0].id)
            assert gen is not None and gen.template == "upload" and gen.boxes == ["My Cat", "Sir"]

    run(tiny_model, tmp_path, scenario, meme_cooldown=0)
