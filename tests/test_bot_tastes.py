"""A server's taste from Discord (bot/cogs/admin.py against the Discord stand-in, with the real
store, queue and worker): `/retrain` by a server admin refuses too few votes (how many more), a
second run (one at a time) and a retrain within the cooldown (how long to wait); otherwise it
queues the server's taste run and edits a progress message until the run ends. `/model`
shows the server's taste beside the base model; `/model rollback:true` rolls the taste back."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from bot.cogs.admin import Admin
from harness.bot import bot_settings, migrated_store, running_bot, standin
from harness.discord_standin import SEND_MESSAGES, DiscordStandIn
from harness.factories import rate_memes
from memebot.settings import Settings
from memebot.store import Store
from memebot.taste_file import read_active, taste_file
from retrain.queue import RunQueue
from retrain.worker import execute_run

ADMIN = 800600
ADMIN2 = 800601
BASE = "char-gru-bot-taste"


def settings(tmp_path: Path) -> Settings:
    model = tmp_path / "model"
    model.mkdir()
    (model / "meta.json").write_text(json.dumps({"version": BASE}))
    return bot_settings(
        tmp_path,
        engine_url="http://127.0.0.1:9",  # none: /model says so
        model_dir=model,
        models_dir=tmp_path / "models",
        queue_url=f"sqlite:///{tmp_path / 'queue.db'}",
        taste_cooldown=600.0,
    )


async def rate(store: Store, guild: int, n: int, start: int = 0) -> None:
    await rate_memes(store, guild, n, start=start, seed=start, first_message=5_000_000)


def work(s: Settings) -> int:
    queue = RunQueue(s.queue_url, execute=lambda rid: execute_run(rid, s))
    try:
        return queue.work_until_empty()
    finally:
        queue.close()


async def ask(api: DiscordStandIn, name: str, user_id: int, **options: Any) -> str:
    rec = await api.answered(await api.invoke(name, options, user_id=user_id, admin=True))
    assert all(r.ephemeral for r in rec.replies), [r.content for r in rec.replies]
    return rec.replies[-1].content


def scenario_run(tmp_path: Path, db_url: str, body: Any) -> None:
    async def go() -> None:
        s = settings(tmp_path)
        s = s.model_copy(update={"database_url": db_url})
        async with standin() as api, migrated_store(db_url) as store:
            async with running_bot(api, s, store) as bot:
                cog = bot.get_cog("Admin")  # the extension's own copy of the class
                assert cog is not None and type(cog).__name__ == Admin.__name__
                cog.poll_interval = 0.05  # type: ignore[attr-defined]
                await body(api, s, store)
            assert api.unhandled == [], api.unhandled

    asyncio.run(go())


def test_retrain_model_and_rollback_of_a_servers_taste(tmp_path: Path, db_url: str) -> None:
    async def body(api: DiscordStandIn, s: Settings, store: Store) -> None:
        guild = api.guild_id
        # Too few votes: how many more, nothing queued.
        await rate(store, guild, 8)
        text = await ask(api, "retrain", ADMIN)
        assert "12 more rated memes" in text and "needed" in text, text
        assert await store.runs() == []
        assert "This server's taste: the default" in await ask(api, "model", ADMIN)

        await rate(store, guild, 52, start=8)
        text = await ask(api, "retrain", ADMIN)
        assert text.startswith("Taste run #"), text
        (run,) = await store.runs()
        assert run.kind == "taste" and run.guild_id == guild and run.status == "queued"
        # Another admin while it waits: one run per server.
        text = await ask(api, "retrain", ADMIN2)
        assert "already queued" in text and "one taste run per server at a time" in text, text
        # The progress message in the channel (its first words are edited away by progress).
        progress = next(m for m in api.sent if f"taste run #{run.id}" in m.content)
        assert not progress.ephemeral and progress.interaction_token is None
        assert f"taste run #{run.id} queued: waiting for a worker" in progress.content

        assert await asyncio.to_thread(work, s) == 1
        await api.wait_until(lambda: "succeeded" in progress.content, timeout=20)
        assert "taste v1 now serves this server" in progress.content, progress.content
        assert "held-out AUC" in progress.content
        assert read_active(s.models_dir, guild) == taste_file(s.models_dir, guild, 1)

        # Within the cooldown: told how long to wait; no run.
        text = await ask(api, "retrain", ADMIN2)
        assert "try again in 9 min" in text or "try again in 10 min" in text, text
        assert len(await store.runs()) == 1

        shown = await ask(api, "model", ADMIN)
        assert "This server's taste: v1" in shown and "60 votes" in shown, shown
        assert "held-out score" in shown and "Engine serves:" in shown

        text = await ask(api, "model", ADMIN, rollback=True)
        assert (
            text
            == "Rolled this server's taste back to the default (it has no taste of its own now)."
        )
        assert read_active(s.models_dir, guild) is None
        assert await store.active_taste(guild) is None
        assert "this server has no taste of its own" in await ask(
            api, "model", ADMIN, rollback=True
        )
        assert "This server's taste: the default" in await ask(api, "model", ADMIN)

    scenario_run(tmp_path, db_url, body)


def test_two_admins_at_once_get_one_run(tmp_path: Path, db_url: str) -> None:
    async def body(api: DiscordStandIn, s: Settings, store: Store) -> None:
        await rate(store, api.guild_id, 30)
        recs = [await api.invoke("retrain", {}, user_id=uid, admin=True) for uid in (ADMIN, ADMIN2)]
        texts = [(await api.answered(r)).replies[-1].content for r in recs]
        queued = [t for t in texts if t.startswith("Taste run #")]
        assert len(queued) == 1, texts
        other = next(t for t in texts if t not in queued)
        assert "one taste run per server" in other or "try again in" in other, other
        assert len(await store.runs(kind="taste")) == 1

    scenario_run(tmp_path, db_url, body)


def test_a_refused_progress_message_queues_nothing_and_gives_the_cooldown_back(
    tmp_path: Path, db_url: str
) -> None:
    async def body(api: DiscordStandIn, s: Settings, store: Store) -> None:
        await rate(store, api.guild_id, 30)
        # app_permissions say the bot may post; Discord refuses the channel message.
        api.forbid_sends[api.channel_ids[0]] = SEND_MESSAGES
        text = await ask(api, "retrain", ADMIN)
        assert "**Send Messages**" in text and "Nothing was queued" in text, text
        assert await store.runs() == []
        # The budget was given back: granted again, the next try is queued at once.
        del api.forbid_sends[api.channel_ids[0]]
        text = await ask(api, "retrain", ADMIN)
        assert text.startswith("Taste run #"), text
        (run,) = await store.runs()
        assert run.message_id in api.messages

    scenario_run(tmp_path, db_url, body)
