"""The real discord.py bot against the Discord stand-in, the real engine over HTTP and the real
store (SQLite here; PostgreSQL in test_bot_load.py): /meme, votes, 🔁, errors, admin guards."""

from __future__ import annotations

import asyncio
import io
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bot.app import MemeBot
from harness.bot import bot_settings, run_scenario, running_bot, standin, vote_book
from harness.discord_standin import (
    ADD_REACTIONS,
    Attachment,
    ChannelRef,
    DiscordStandIn,
    Interaction,
    Sent,
)
from harness.slow import hung_engine
from memebot.settings import Settings
from memebot.store import Store

pytestmark = pytest.mark.slow
UP, DOWN = "👍", "👎"


async def meme(api: DiscordStandIn, *, user_id: int = 800100, **options: Any) -> Interaction:
    return await api.answered(await api.invoke("meme", options, user_id=user_id))


def test_meme_posts_image_caption_votes_and_stores(tiny_model: Path, tmp_path: Path) -> None:
    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        async with running_bot(api, s, store) as bot:
            assert bot.synced is True and api.command_puts, "commands synced at first start"
            names = {c["name"] for c in api.command_puts[-1][1]}
            assert {"meme", "templates", "top", "stats", "retrain", "model"} <= names
            rec = await meme(api, template="two-buttons", start_text="when", style="greedy")
            assert rec.callbacks[0]["type"] == 5, "deferred before calling the engine"
            (msg,) = rec.followups
            (att,) = msg.attachments
            img = Image.open(io.BytesIO(att.data))
            assert img.format == "JPEG" and att.filename == "two-buttons.jpg"
            lines = msg.content.split("\n")
            assert len(lines) == 2 and lines[0].startswith("> when")
            assert att.description == " / ".join(line[2:] for line in lines)
            button = msg.components[0]["components"][0]
            await api.wait_until(lambda: len(api.bot_reactions(msg.id)) == 2)
            assert sorted(api.bot_reactions(msg.id)) == sorted([UP, DOWN])
            gen = await store.generation_by_message(msg.id)
            assert gen is not None and gen.template == "two-buttons"
            assert button["custom_id"] == f"memebot:again:{gen.id}"
            assert gen.user_id == 800100 and gen.channel_id == api.channel_ids[0]
            assert gen.guild_id == api.guild_id and gen.seed is not None
            assert gen.model_version and gen.model_version.startswith("char-gru-")
            assert gen.options["style"] == "greedy" and gen.timings
            assert gen.boxes == [line[2:] for line in lines]
            used = gen.options["engine"]  # what the engine used, defaults filled in
            assert used["decoding"]["method"] == "greedy" and used["start"] == "when"
            assert "temperature" in used["decoding"] and used["boxes"] == 2
            assert "seed" not in used  # stored as gen.seed
            assert used["server"] == str(api.guild_id), "the guild's taste picks its captions"
        # A second start with the same commands does not sync again.
        async with running_bot(api, s, store) as bot:
            assert bot.synced is False and len(api.command_puts) == 1

    run_scenario(tiny_model, tmp_path, scenario)


def test_reactions_vote_switch_and_retract(tiny_model: Path, tmp_path: Path) -> None:
    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        async with running_bot(api, s, store) as bot:
            (msg,) = (await meme(api, template="y-u-no")).followups
            other = (await meme(api, template="success-kid")).followups[0]
            await api.wait_until(lambda: len(api.bot_reactions(msg.id)) == 2)
            await api.wait_until(lambda: len(api.bot_reactions(other.id)) == 2)
            gen = await store.generation_by_message(msg.id)
            assert gen is not None
            book = vote_book(bot)
            events = [
                (api.react, msg.id, UP, 1),
                (api.react, msg.id, UP, 2),
                (api.react, msg.id, DOWN, 3),
                (api.react, msg.id, "😂", 4),  # not a vote emoji
                (api.react, msg.id, UP, int(api.bot_user["id"])),  # the bot's own
                (api.react, 123456789, UP, 5),  # not a meme message
                (api.react, msg.id, DOWN, 2),  # user 2 changes their mind: latest wins
                (api.react, msg.id, UP, 1),  # a duplicate event
            ]
            for fn, mid, emoji, uid in events:
                await fn(mid, emoji, uid)
            await book.wait_handled(len(events))
            assert await store.votes(gen.id) == {1: 1, 2: -1, 3: -1}
            assert await store.tally(gen.id) == (1, 2)
            await api.unreact(msg.id, DOWN, 3)  # retracts
            await api.unreact(msg.id, UP, 2)  # user 2's 👍 no longer counts: nothing to retract
            await book.wait_handled(len(events) + 2)
            assert await store.votes(gen.id) == {1: 1, 2: -1}
            other_gen = await store.generation_by_message(other.id)
            assert other_gen is not None and await store.votes(other_gen.id) == {}

    run_scenario(tiny_model, tmp_path, scenario)


def test_again_button_works_after_restart(tiny_model: Path, tmp_path: Path) -> None:
    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        async with running_bot(api, s, store):
            (msg,) = (await meme(api, template="two-buttons", style="creative", boxes=2)).followups
            await api.wait_until(lambda: len(api.bot_reactions(msg.id)) == 2)
        first = await store.generation_by_message(msg.id)
        assert first is not None
        async with running_bot(api, s, store):  # a new process: no view state survives
            custom_id = msg.components[0]["components"][0]["custom_id"]
            rec = await api.answered(await api.press_button(msg.id, custom_id, user_id=800200))
            assert rec.deferred
            (again,) = rec.followups
            assert again.attachments and again.attachments[0].filename == "two-buttons.jpg"
            await api.wait_until(lambda: len(api.bot_reactions(again.id)) == 2)  # stored by then
            second = await store.generation_by_message(again.id)
            assert second is not None and second.id != first.id
            assert second.template == first.template and second.options == first.options
            assert second.options["engine"]["server"] == str(api.guild_id)
            assert second.user_id == 800200 and second.seed != first.seed
            assert again.components[0]["components"][0]["custom_id"] == (
                f"memebot:again:{second.id}"
            )

    run_scenario(tiny_model, tmp_path, scenario)


def test_restart_reconciles_votes_missed_while_down(tiny_model: Path, tmp_path: Path) -> None:
    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        async with running_bot(api, s, store) as bot:
            (msg,) = (await meme(api, template="y-u-no")).followups
            await api.wait_until(lambda: len(api.bot_reactions(msg.id)) == 2)
            await api.react(msg.id, UP, 1)
            await api.react(msg.id, UP, 2)
            await vote_book(bot).wait_handled(2)
        gen = await store.generation_by_message(msg.id)
        assert gen is not None and await store.votes(gen.id) == {1: 1, 2: 1}
        # While the bot is offline: 1 retracts, 2 switches, 3 and 4 vote; no events arrive.
        await api.unreact(msg.id, UP, 1, send=False)
        await api.unreact(msg.id, UP, 2, send=False)
        await api.react(msg.id, DOWN, 2, send=False)
        await api.react(msg.id, UP, 3, send=False)
        await api.react(msg.id, DOWN, 4, send=False)
        for uid in range(100, 230):  # more than one page of reactors (100 per GET)
            await api.react(msg.id, UP, uid, send=False)
        async with running_bot(api, s, store) as bot:
            votes = await store.votes(gen.id)
            assert votes == {2: -1, 3: 1, 4: -1} | {u: 1 for u in range(100, 230)}
            # A new gateway session (not resumed) is reconciled too: events in the gap are lost.
            await api.invalidate_session()
            await api.react(msg.id, UP, 4, send=False)
            await api.unreact(msg.id, DOWN, 4, send=False)
            await bot.wait_reconciled(2)
            assert api.identifies == 3
            assert (await store.votes(gen.id))[4] == 1

    run_scenario(tiny_model, tmp_path, scenario)


def test_autocomplete_lists_engine_templates(tiny_model: Path, tmp_path: Path) -> None:
    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        async with running_bot(api, s, store):
            rec = await api.autocomplete("meme", {"template": "two"}, "template")
            await api.wait_until(lambda: rec.choices is not None)
            assert rec.choices is not None
            assert {"name": "Two Buttons", "value": "two-buttons"} in rec.choices
            rec = await api.autocomplete("meme", {"template": ""}, "template")
            await api.wait_until(lambda: rec.choices is not None)
            assert rec.choices is not None and 1 <= len(rec.choices) <= 25

    run_scenario(tiny_model, tmp_path, scenario)


def test_admin_commands_are_guarded(tiny_model: Path, tmp_path: Path) -> None:
    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        async with running_bot(api, s, store):
            sync = {c["name"]: c for c in api.command_puts[-1][1]}
            assert str(sync["retrain"]["default_member_permissions"]) == "8"  # administrator
            assert sync["meme"]["default_member_permissions"] is None
            refused = await api.answered(await api.invoke("retrain", user_id=5))
            (reply,) = refused.replies
            assert reply.ephemeral and "administrators" in reply.content
            # The shared model is the bot owner's (tests/test_bot_owners.py: who else is not).
            owner = int(api.owner["id"])
            ok = await api.answered(await api.invoke("retrain", {"base": True}, user_id=owner))
            (reply,) = ok.followups
            assert reply.ephemeral and reply.content == "no new ratings: nothing to retrain on"
            listed = await api.answered(await api.invoke("model", user_id=777))
            assert "serves" in listed.replies[-1].content  # 777 is on MEMEBOT_ADMIN_IDS
            model = await api.answered(
                await api.invoke("model", {"rollback": True, "base": True}, user_id=owner)
            )
            assert model.replies[-1].content == "no previous model version to roll back to"
            # A role on MEMEBOT_ADMIN_IDS, not in the bot's cache: from the interaction.
            by_role = await api.answered(await api.invoke("model", user_id=5, roles=(900777,)))
            assert "serves" in by_role.replies[0].content
            other_role = await api.answered(await api.invoke("model", user_id=5, roles=(900778,)))
            assert "administrators" in other_role.replies[0].content
            # Guild-only: Discord offers none of the commands in DMs or other contexts.
            for name in ("meme", "top", "stats", "settings", "retrain", "model"):
                assert sync[name]["contexts"] == [0], name

    run_scenario(tiny_model, tmp_path, scenario, admin_ids=(777, 900777))


def test_retrain_posts_its_progress_and_edits_it_until_the_outcome(
    tiny_model: Path, tmp_path: Path
) -> None:
    from retrain.queue import RunQueue

    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        async with running_bot(api, s, store) as bot:
            admin = bot.get_cog("Admin")
            assert admin is not None
            admin.poll_interval = 0.02  # type: ignore[attr-defined]
            rec = await meme(api, template="two-buttons")
            await store.set_vote(rec.followups[0].id, 800200, 1)  # a new rating

            owner = int(api.owner["id"])  # the shared model is the bot owner's
            asked = await api.answered(
                await api.invoke("retrain", {"mode": "full", "base": True}, user_id=owner)
            )
            assert "run #1 queued" in asked.followups[-1].content
            assert asked.followups[-1].ephemeral
            progress = next(m for m in api.sent if "asked for a model retrain" in m.content)
            assert not progress.ephemeral and "run #1 (full) queued" in progress.content
            queue = RunQueue(s.queue_url)
            assert queue.pending() == 1  # the worker's job, in the real queue
            queue.close()
            run = await store.run(1)
            assert run is not None and run.message_id == progress.id and run.mode == "full"

            again = await api.answered(
                await api.invoke("retrain", {"base": True}, user_id=owner, admin=True)
            )
            assert "run #1 (full by" in again.followups[-1].content  # one at a time
            assert "already queued" in again.followups[-1].content

            # What a worker elsewhere writes to the store shows up in the message.
            await store.claim_run(1, "trainer:1")
            await store.update_run(
                1, stage="training", progress={"epoch": 1, "epochs": 2, "val_loss": 1.5}
            )
            await api.wait_until(lambda: "epoch 1/2, val loss 1.5000" in progress.content)
            gate = {"passed": False, "reasons": ["x"]}
            await store.finish_run(1, "rejected", gate=gate, error="val nats/char 1.2 -> 1.3")
            await api.wait_until(lambda: "rejected: val nats/char 1.2 -> 1.3" in progress.content)

    run_scenario(tiny_model, tmp_path, scenario)


def test_engine_down_is_an_ephemeral_error_and_the_bot_goes_on(
    tiny_model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        down = s.model_copy(update={"engine_url": "http://127.0.0.1:9"})  # nothing listens
        async with running_bot(api, down, store) as bot:
            rec = await api.answered(await api.invoke("meme", {"template": "two-buttons"}))
            assert rec.deferred and rec.deleted_original  # the public "thinking" is removed
            (reply,) = rec.followups
            assert reply.ephemeral and "not reachable" in reply.content
            assert not reply.attachments and (await store.stats(api.guild_id)).generations == 0
            # An unexpected error (the store lost its table) is logged, answered, survived.
            async with store.db.begin() as conn:
                await conn.exec_driver_sql("DROP TABLE votes")
            rec = await api.answered(await api.invoke("stats"))
            assert rec.replies[-1].ephemeral and "Something went wrong" in (rec.replies[-1].content)
            (logged,) = [r for r in caplog.records if "unexpected error in /stats" in r.message]
            assert logged.levelname == "ERROR" and logged.exc_info is not None
            assert f"user {rec.payload['member']['user']['id']}" in logged.message
            assert not bot.is_closed()
            rec = await api.answered(await api.invoke("forget-me"))
            assert rec.replies[-1].ephemeral

    run_scenario(tiny_model, tmp_path, scenario, engine=False)


def test_cooldown_and_unknown_template(tiny_model: Path, tmp_path: Path) -> None:
    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        async with running_bot(api, s, store):
            first = await meme(api, template="nope-not-a-template")
            (reply,) = first.followups
            assert reply.ephemeral and "nope" in reply.content.lower()
            assert "unknown template" in reply.content.lower()
            # A refused call does not use up the cooldown; a meme made does.
            made = await meme(api, template="two-buttons")
            assert made.followups[0].attachments
            again = await meme(api, template="two-buttons")
            (reply,) = again.replies
            assert reply.ephemeral and "try again in" in reply.content
            assert not again.deferred  # refused before any work
            other_user = await meme(api, template="two-buttons", user_id=4242)
            assert other_user.followups[0].attachments

    run_scenario(tiny_model, tmp_path, scenario, meme_cooldown=60.0)


def png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (40, 120, 200)).save(buf, "PNG")
    return buf.getvalue()


def png_bomb(width: int = 60_000, height: int = 60_000) -> bytes:
    """A valid PNG header claiming width x height pixels, with a few bytes of pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1000))
        + chunk(b"IEND", b"")
    )


def test_attachment_is_captioned_and_bad_files_are_refused(
    tiny_model: Path, tmp_path: Path
) -> None:
    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        async with running_bot(api, s, store):
            ok = await meme(api, image=Attachment("cat.png", "image/png", png(320, 240), None))
            (msg,) = ok.followups
            (att,) = msg.attachments
            assert Image.open(io.BytesIO(att.data)).size[0] == 320 and msg.components == []
            await api.wait_until(lambda: len(api.bot_reactions(msg.id)) == 2)
            gen = await store.generation_by_message(msg.id)
            assert gen is not None and gen.template == "upload" and len(gen.boxes) == 2

            async def refused(att: Attachment, *words: str, deferred: bool) -> None:
                rec = await meme(api, image=att)
                (reply,) = [r for r in rec.replies if r.content]
                assert reply.ephemeral and not reply.attachments, reply
                assert rec.deferred is deferred
                for w in words:
                    assert w in reply.content.lower(), (w, reply.content)

            await refused(
                Attachment("notes.txt", "text/plain", b"hello", None),
                "notes.txt",
                "not an image",
                deferred=False,
            )
            await refused(
                Attachment("huge.png", "image/png", png(8, 8) + b"\0" * 5000, None),
                "huge.png",
                "limit",
                deferred=False,
            )
            await refused(
                Attachment("bomb.png", "image/png", png_bomb(), None), "pixels", deferred=True
            )
            await refused(
                Attachment("fake.png", "image/png", b"GIF89a not really", None),
                "image",
                deferred=True,
            )
            both = await meme(
                api, template="two-buttons", image=Attachment("a.png", "image/png", png(8, 8), None)
            )
            assert "either a template or an image" in both.replies[0].content
            # No content type from Discord: the file name's extension tells.
            untyped = await meme(api, image=Attachment("dog.PNG", "", png(64, 48), None))
            assert untyped.followups[0].attachments and not untyped.followups[0].ephemeral
            assert (await store.stats(api.guild_id)).generations == 2

    run_scenario(tiny_model, tmp_path, scenario, max_upload_bytes=4096)


def test_settings_filter_channels_top_stats_and_forget_me(tiny_model: Path, tmp_path: Path) -> None:
    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        api.channel_ids.append(900010)
        async with running_bot(api, s, store) as bot:
            shown = await api.answered(await api.invoke("settings", admin=True))
            assert "Content filter: `standard`" in shown.replies[0].content
            refused = await api.answered(
                await api.invoke("settings", {"content_filter": "strict"}, user_id=5)
            )
            assert "administrators" in refused.replies[0].content
            assert (await store.guild_settings(api.guild_id)).filter_level == "standard"
            changed = await api.answered(
                await api.invoke(
                    "settings",
                    {
                        "content_filter": "strict",
                        "default_style": "greedy",
                        "allow_channel": ChannelRef(900010),
                    },
                    admin=True,
                )
            )
            assert "`strict`" in changed.replies[0].content
            gs = await store.guild_settings(api.guild_id)
            assert gs.filter_level == "strict" and gs.allowed_channel_ids == (900010,)
            # Memes only in the allowed channel; there the guild's default style applies.
            elsewhere = await meme(api, template="two-buttons")
            (refusal,) = elsewhere.replies  # deferred first (Discord's 3 s), then refused
            assert "<#900010>" in refusal.content and refusal.ephemeral
            assert elsewhere.deleted_original
            rec = await api.answered(
                await api.invoke("meme", {"template": "two-buttons"}, channel_id=900010)
            )
            (msg,) = rec.followups
            await api.wait_until(lambda: len(api.bot_reactions(msg.id)) == 2)  # stored by then
            gen = await store.generation_by_message(msg.id)
            assert gen is not None and gen.options["style"] == "greedy"
            # Strict filter: a start text with swearing is refused before the engine.
            rude = await api.answered(
                await api.invoke(
                    "meme",
                    {"template": "two-buttons", "start_text": "holy shit"},
                    channel_id=900010,
                )
            )
            assert "content filter" in rude.replies[-1].content and rude.replies[-1].ephemeral
            await api.react(msg.id, UP, 31)
            await api.react(msg.id, UP, 32)
            await api.react(msg.id, DOWN, 800100)
            await vote_book(bot).wait_handled(3)
            top = await api.answered(await api.invoke("top", {"period": "day"}))
            assert "+1" in top.replies[0].content and "two-buttons" in top.replies[0].content
            empty = await api.answered(await api.invoke("top", {"template": "y-u-no"}))
            assert "No rated memes" in empty.replies[0].content
            stats = await api.answered(await api.invoke("stats"))
            assert "Memes made: 1" in stats.replies[0].content
            assert "Votes: 3 (2👍 1👎, 67% up)" in stats.replies[0].content
            gone = await api.answered(await api.invoke("forget-me"))  # user 800100
            assert "1 vote(s) and 1 meme record(s)" in gone.replies[0].content
            assert await store.generation_by_message(msg.id) is None

    run_scenario(tiny_model, tmp_path, scenario)


def test_bot_migrates_a_fresh_database_at_start(tiny_model: Path, tmp_path: Path) -> None:
    async def go() -> None:
        url = f"sqlite+aiosqlite:///{tmp_path / 'fresh' / 'bot.db'}"
        s = bot_settings(tmp_path, database_url=url, engine_url="http://127.0.0.1:9")
        async with standin() as api:
            bot = MemeBot(s, guild_ready_timeout=0.05)  # its own store, migrations on
            with api.patch_discord():
                task = asyncio.create_task(bot.start("stand-in-token"))
                await asyncio.wait_for(bot.wait_reconciled(1), 60)
                rec = await api.answered(await api.invoke("stats"))
                assert "Memes made: 0" in rec.replies[0].content
                assert "engine not reachable" in rec.replies[0].content
                await bot.close()
                await task
        assert (tmp_path / "fresh" / "bot.db").is_file()

    asyncio.run(go())


def test_missing_add_reactions_keeps_the_meme_and_tells_the_user(
    tiny_model: Path, tmp_path: Path
) -> None:
    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        # Discord answers 403 to the bot's reaction PUTs, whatever app_permissions say.
        api.forbid_sends[api.channel_ids[0]] = ADD_REACTIONS
        async with running_bot(api, s, store) as bot:
            rec = await api.invoke("meme", {"template": "two-buttons"})
            await api.wait_until(lambda: len(rec.followups) == 2)
            posted, notice = rec.followups
            # The first followup replaced the "thinking" message, and it was not deleted.
            assert rec.original is posted and not rec.deleted_original
            assert posted.id in api.messages and posted.attachments and not posted.ephemeral
            assert notice.ephemeral and "Add Reactions" in notice.content
            assert api.bot_reactions(posted.id) == []
            gen = await store.generation_by_message(posted.id)
            assert gen is not None
            await api.react(posted.id, UP, 31)  # users' own reactions still count
            await vote_book(bot).wait_handled(1)
            assert await store.votes(gen.id) == {31: 1}

    run_scenario(tiny_model, tmp_path, scenario)


def test_a_vote_before_the_meme_is_recorded_counts(tiny_model: Path, tmp_path: Path) -> None:
    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        async with running_bot(api, s, store) as bot:
            book = vote_book(bot)

            async def vote_first(sent: Sent) -> None:
                # A user votes as the meme appears, before the bot records its message id.
                api.on_followup = None
                await api.react(sent.id, UP, 41)
                await book.wait_handled(1)

            api.on_followup = vote_first
            (msg,) = (await meme(api, template="y-u-no")).followups
            await api.wait_until(lambda: len(api.bot_reactions(msg.id)) == 2)
            gen = await store.generation_by_message(msg.id)
            assert gen is not None and book.replayed == 1
            assert await store.votes(gen.id) == {41: 1}

    run_scenario(tiny_model, tmp_path, scenario)


def test_forget_me_is_not_undone_by_reconciliation(tiny_model: Path, tmp_path: Path) -> None:
    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        async with running_bot(api, s, store) as bot:
            (msg,) = (await meme(api, template="y-u-no")).followups
            await api.wait_until(lambda: len(api.bot_reactions(msg.id)) == 2)
            gen = await store.generation_by_message(msg.id)
            assert gen is not None
            await api.react(msg.id, UP, 31)
            await api.react(msg.id, DOWN, 32)
            await vote_book(bot).wait_handled(2)
            gone = await api.answered(await api.invoke("forget-me", user_id=31))
            assert "1 vote(s)" in gone.replies[0].content
            assert "reactions already on memes" in gone.replies[0].content
            # 31's 👍 is still on the message: a new session reconciles, a new event comes.
            await api.invalidate_session()
            await bot.wait_reconciled(2)
            await api.unreact(msg.id, UP, 31)
            await api.react(msg.id, UP, 31)
            await vote_book(bot).wait_handled(4)
            assert await store.votes(gen.id) == {32: -1}

    run_scenario(tiny_model, tmp_path, scenario)


def test_custom_vote_emoji(tiny_model: Path, tmp_path: Path) -> None:
    custom = "upvote:1187654321098765432"  # how the REST routes and the stand-in name it

    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        async with running_bot(api, s, store) as bot:
            (msg,) = (await meme(api, template="y-u-no")).followups
            await api.wait_until(lambda: len(api.bot_reactions(msg.id)) == 2)
            assert sorted(api.bot_reactions(msg.id)) == sorted([custom, DOWN])
            gen = await store.generation_by_message(msg.id)
            assert gen is not None
            await api.react(msg.id, custom, 51)
            await api.react(msg.id, "other:1", 52)  # another custom emoji: no vote
            await vote_book(bot).wait_handled(2)
            assert await store.votes(gen.id) == {51: 1}
        await api.react(msg.id, custom, 53, send=False)  # while the bot is down
        async with running_bot(api, s, store):
            assert await store.votes(gen.id) == {51: 1, 53: 1}

    run_scenario(tiny_model, tmp_path, scenario, vote_up="<:upvote:1187654321098765432>")


def test_guild_sync_and_templates(tiny_model: Path, tmp_path: Path) -> None:
    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        async with running_bot(api, s, store):
            ((path, commands),) = api.command_puts  # to the guild: instant, not global
            assert path == f"/applications/{api.app_id}/guilds/{api.guild_id}/commands"
            assert "meme" in {c["name"] for c in commands}
            rec = await api.answered(await api.invoke("templates", {"query": "two"}))
            (reply,) = rec.replies
            assert reply.ephemeral and "`two-buttons`: Two Buttons (2 boxes)" in reply.content
            none = await api.answered(await api.invoke("templates", {"query": "zzzzqqq"}))
            assert "No template matches `zzzzqqq`" in none.replies[0].content

    run_scenario(tiny_model, tmp_path, scenario, discord_guilds=(900001,))


@pytest.mark.parametrize(
    ("overloaded", "words"), [(True, "busy; try again in 7 s"), (False, "took longer than")]
)
def test_engine_busy_or_hung_is_an_ephemeral_error(
    overloaded: bool, words: str, tiny_model: Path, tmp_path: Path
) -> None:
    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        async with hung_engine(overloaded=overloaded) as engine:
            bad = s.model_copy(update={"engine_url": engine.url, "request_timeout": 0.1})
            async with running_bot(api, bad, store):
                rec = await meme(api, template="two-buttons")
                (reply,) = rec.followups
                assert reply.ephemeral and words in reply.content and rec.deleted_original
                assert (await store.stats(api.guild_id)).generations == 0

    run_scenario(tiny_model, tmp_path, scenario, engine=False)
