"""Load through the stand-in with every part real (bot, engine over HTTP, database): 200
concurrent /meme all answered with no generation record lost, and 1,000 reaction events from
100 users giving exact vote counts, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from bot.app import MemeBot
from harness.bot import bot_settings, migrated_store, running_bot, standin, vote_book
from harness.databases import pg_available, postgres_url
from harness.discord_standin import DiscordStandIn, RateLimits
from harness.engine import running_engine
from harness.skips import skip_or_fail
from memebot.store import Store

pytestmark = pytest.mark.slow
UP, DOWN = "👍", "👎"
MEMES = 200
EVENTS = 1000
USERS = 100


@asynccontextmanager
async def database(kind: str, tmp_path: Path) -> AsyncIterator[str]:
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'load.db'}"
        return
    async with postgres_url() as url:
        yield url


def random_reactions(
    rng: random.Random, messages: list[int], n: int
) -> tuple[list[tuple[int, int, str, bool]], dict[tuple[int, int], int]]:
    """n add/remove events that Discord could send (a user removes only a reaction they
    have), and the votes they must leave: the latest added vote wins, removing it retracts."""
    held: dict[tuple[int, int], set[str]] = {}
    votes: dict[tuple[int, int], int] = {}
    events = []
    for _ in range(n):
        key = (rng.choice(messages), 1000 + rng.randrange(USERS))
        mine = held.setdefault(key, set())
        choices = [(e, True) for e in (UP, DOWN) if e not in mine] + [(e, False) for e in mine]
        emoji, add = rng.choice(choices)
        value = 1 if emoji == UP else -1
        if add:
            mine.add(emoji)
            votes[key] = value
        else:
            mine.discard(emoji)
            if votes.get(key) == value:
                del votes[key]
        events.append((key[0], key[1], emoji, add))
    return events, votes


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_200_concurrent_memes_and_1000_reactions(
    kind: str, tiny_model: Path, tmp_path: Path
) -> None:
    async def go() -> None:
        if kind == "postgresql" and not await pg_available():
            skip_or_fail("PostgreSQL is not running at 127.0.0.1:5432")
        async with database(kind, tmp_path) as url:
            s = bot_settings(tmp_path, database_url=url)
            async with (
                standin() as api,
                migrated_store(url) as store,
                running_engine(tiny_model, s) as eng,
            ):
                s = s.model_copy(update={"engine_url": eng.url})
                async with running_bot(api, s, store) as bot:
                    await scenario(api, store, bot)
                assert api.unhandled == []

    async def scenario(api: DiscordStandIn, store: Store, bot: MemeBot) -> None:
        templates = ["two-buttons", "y-u-no", "success-kid", "distracted-boyfriend"]
        recs = await asyncio.gather(
            *(
                api.invoke("meme", {"template": templates[i % 4]}, user_id=10_000 + i)
                for i in range(MEMES)
            )
        )
        await api.wait_until(
            lambda: (
                bool(api.late_callbacks)
                or (
                    all(len(r.followups) == 1 for r in recs)
                    and all(len(api.bot_reactions(r.followups[0].id)) == 2 for r in recs)
                )
            ),
            timeout=300,
        )
        # Every interaction was answered (deferred) within Discord's 3 s.
        assert api.late_callbacks == []
        assert all(r.deferred and r.followups[0].attachments for r in recs)
        ids = [r.followups[0].id for r in recs]
        gens = [await store.generation_by_message(m) for m in ids]
        assert all(g is not None for g in gens)
        assert (await store.stats(api.guild_id)).generations == MEMES
        assert {g.user_id for g in gens if g} == {10_000 + i for i in range(MEMES)}

        messages = ids[:10]
        events, expected = random_reactions(random.Random(7), messages, EVENTS)
        for mid, uid, emoji, add in events:  # sent back to back, not awaited one by one
            await (api.react if add else api.unreact)(mid, emoji, uid)
        await asyncio.wait_for(vote_book(bot).wait_handled(EVENTS), 300)
        for mid, gen in zip(messages, gens, strict=False):
            assert gen is not None
            want = {u: v for (m, u), v in expected.items() if m == mid}
            assert await store.votes(gen.id) == want
        total_up = sum(1 for v in expected.values() if v == 1)
        assert (await store.stats(api.guild_id)).up == total_up

    asyncio.run(go())


def test_memes_under_discords_rate_limits_all_answered_and_ping_no_one(
    tiny_model: Path, tmp_path: Path
) -> None:
    """Discord's buckets on, and a global limit low enough that the bot's reaction adds run
    into it: discord.py waits out every 429, no /meme is lost, every meme gets its 👍/👎, and
    no message the bot sends pings anyone (a start text of @everyone included)."""
    n = 8

    async def go() -> None:
        s = bot_settings(tmp_path)
        async with (
            standin() as api,
            migrated_store(s.database_url) as store,
            running_engine(tiny_model, s) as eng,
        ):
            s = s.model_copy(update={"engine_url": eng.url})
            async with running_bot(api, s, store) as bot:
                api.rate_limits = RateLimits(global_per_s=3)
                recs = await asyncio.gather(
                    *(
                        api.invoke("meme", {"template": "y-u-no", "start_text": "@everyone"})
                        if i == 0
                        else api.invoke("meme", {"template": "two-buttons"}, user_id=20_000 + i)
                        for i in range(n)
                    )
                )
                await api.wait_until(
                    lambda: all(
                        r.followups and len(api.bot_reactions(r.followups[0].id)) == 2 for r in recs
                    ),
                    timeout=120,
                )
                assert api.late_callbacks == []
                posted = [r.followups[0] for r in recs]
                assert all(m.attachments and not m.ephemeral for m in posted)
                assert all(len(r.followups) == 1 for r in recs), "no error notice"
                assert "everyone" in posted[0].content  # shown (escaped), never a ping
                # Users' reactions meanwhile all count.
                for i, m in enumerate(posted):
                    await api.react(m.id, UP, 30_000 + i)
                await vote_book(bot).wait_handled(n)
                for m in posted:
                    gen = await store.generation_by_message(m.id)
                    assert gen is not None and await store.tally(gen.id) == (1, 0)
                limited = api.rate_limits.limited
                assert any(is_global for _route, is_global in limited), limited
            assert [m.pings for m in api.sent] == [[] for _ in api.sent]
            assert all(m.allowed_mentions is not None for m in api.sent if m.content)
            assert api.unhandled == []

    asyncio.run(go())
