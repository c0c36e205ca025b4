"""Who owns the bot (bot/owners.py): MEMEBOT_OWNER_IDS and discord.py's `is_owner`, first as
plain functions, then through the real bot against the Discord stand-in, whose application
info names an owner or a team: only owners retrain or roll back the shared base model."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import discord
from discord.ext import commands

from bot.owners import OWNERS, is_owner, listed_owner, owner_only_text
from harness.bot import bot_settings, migrated_store, running_bot, standin
from harness.discord_standin import DiscordStandIn
from memebot.settings import Settings
from memebot.store import Store


def user(uid: int) -> discord.User:
    state = discord.Client(intents=discord.Intents.none())._connection
    data = {"id": str(uid), "username": f"u{uid}", "discriminator": "0", "avatar": None}
    return discord.User(state=state, data=data)  # type: ignore[arg-type]


def test_owner_ids_setting_parses_comma_separated_ids() -> None:
    s = Settings.from_env({"MEMEBOT_OWNER_IDS": " 11, 22 ,"})
    assert s.owner_ids == (11, 22)
    assert Settings.from_env({}).owner_ids == ()
    assert listed_owner(22, s.owner_ids) and not listed_owner(33, s.owner_ids)


def test_refusal_names_who_can() -> None:
    text = owner_only_text("retrain the shared model")
    assert text.startswith("Only the bot's owner can retrain the shared model")
    assert OWNERS in text and "MEMEBOT_OWNER_IDS" in text and "team" in text


def test_is_owner_combines_the_application_owner_and_the_setting() -> None:
    async def go() -> None:
        # owner_id given: discord.py answers without asking Discord.
        bot = commands.Bot(command_prefix="!", intents=discord.Intents.none(), owner_id=1)
        assert await is_owner(bot, user(1), ())
        assert not await is_owner(bot, user(2), ())
        assert await is_owner(bot, user(2), (2, 3))
        team = commands.Bot(command_prefix="!", intents=discord.Intents.none(), owner_ids={4, 5})
        assert await is_owner(team, user(5), ()) and not await is_owner(team, user(1), ())

    asyncio.run(go())


# -- the real bot against the stand-in -------------------------------------------------------

Scenario = Callable[[DiscordStandIn, Settings, Store], Coroutine[Any, Any, None]]
SHARED = "Only the bot's owner can retrain the shared model"
SHARED_ROLLBACK = "Only the bot's owner can roll back the shared model"
ADMIN = 800600  # a server administrator who does not own the bot
APP_INFO = "GET /oauth2/applications/@me"  # the stand-in's record of discord.py's request


def run(tmp_path: Path, scenario: Scenario, **over: Any) -> None:
    """No engine: the owner checks come before it (`/model` says it is not reachable)."""

    async def go() -> None:
        s = bot_settings(tmp_path, engine_url="http://127.0.0.1:9", **over)
        async with standin() as api, migrated_store(s.database_url) as store:
            await scenario(api, s, store)
            assert api.unhandled == [], api.unhandled

    asyncio.run(go())


async def ask(api: DiscordStandIn, name: str, user_id: int, **options: Any) -> str:
    """The last reply the bot gave to the caller; every one of them is ephemeral."""
    admin = options.pop("admin", False)
    rec = await api.answered(await api.invoke(name, options, user_id=user_id, admin=admin))
    assert all(r.ephemeral for r in rec.replies), [r.content for r in rec.replies]
    return rec.replies[-1].content


def test_only_the_owner_retrains_or_rolls_back_the_base_model(tmp_path: Path) -> None:
    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        owner = int(api.owner["id"])
        async with running_bot(api, s, store):
            # discord.py's login reads the application info too; is_owner's read comes after.
            at_start = api.requests.count(APP_INFO)
            # The application's owner, not an administrator of this server: allowed.
            assert await ask(api, "retrain", owner, base=True) == (
                "no new ratings: nothing to retrain on"
            )
            assert await ask(api, "model", owner, rollback=True, base=True) == (
                "no previous model version to roll back to"
            )
            # A server administrator who does not own the bot: refused, told who can.
            refused = await ask(api, "retrain", ADMIN, base=True, mode="full", admin=True)
            assert refused.startswith(SHARED) and "MEMEBOT_OWNER_IDS" in refused
            refused = await ask(api, "model", ADMIN, rollback=True, base=True, admin=True)
            assert refused.startswith(SHARED_ROLLBACK)
            # Without base: the server's own taste (no votes yet); no base run either way.
            taste = await ask(api, "retrain", ADMIN, admin=True)
            assert "rated memes count for this server's taste" in taste
            taste = await ask(api, "model", ADMIN, rollback=True, admin=True)
            assert "this server has no taste of its own to roll back" in taste
            assert await store.runs() == []
            # Showing the models stays an administrator's; a member is refused first.
            assert "Engine serves: `the engine is not reachable`" in await ask(
                api, "model", ADMIN, admin=True
            )
            member = await ask(api, "retrain", 5, base=True)
            assert "administrators" in member
            # The synced command carries the option, and stays hidden from members.
            sync = {c["name"]: c for c in api.command_puts[-1][1]}
            options = {o["name"]: o for o in sync["retrain"]["options"]}
            assert options["base"]["type"] == 5 and not options["base"].get("required")
            assert str(sync["retrain"]["default_member_permissions"]) == "8"
            assert api.requests.count(APP_INFO) == at_start + 1  # asked once, kept

    run(tmp_path, scenario)


def test_owner_ids_setting_makes_an_owner(tmp_path: Path) -> None:
    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        async with running_bot(api, s, store):
            at_start = api.requests.count(APP_INFO)
            assert await ask(api, "retrain", 4242, base=True) == (
                "no new ratings: nothing to retrain on"
            )
            assert await ask(api, "model", 4242, rollback=True, base=True) == (
                "no previous model version to roll back to"
            )
            # MEMEBOT_OWNER_IDS answers without asking Discord.
            assert api.requests.count(APP_INFO) == at_start
            assert (await ask(api, "retrain", 4243, base=True, admin=True)).startswith(SHARED)

    run(tmp_path, scenario, owner_ids=(4242,))


def test_a_team_owned_application(tmp_path: Path) -> None:
    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        api.team = {810001: "admin", 810002: "developer", 810003: "read_only"}
        async with running_bot(api, s, store):
            for member in (810001, 810002):  # team admins and developers own the bot
                assert await ask(api, "retrain", member, base=True) == (
                    "no new ratings: nothing to retrain on"
                )
            read_only = await ask(api, "retrain", 810003, base=True, admin=True)
            assert read_only.startswith(SHARED)
            # The user who was the owner before the team took the application is not one now.
            former = await ask(api, "retrain", int(api.owner["id"]), base=True, admin=True)
            assert former.startswith(SHARED)

    run(tmp_path, scenario)


def test_discord_not_answering_who_owns_the_bot_is_a_polite_refusal(tmp_path: Path) -> None:
    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        async with running_bot(api, s, store):
            api.forbid_application = True
            text = await ask(api, "retrain", ADMIN, base=True, admin=True)
            assert "Discord did not say who owns this bot" in text
            text = await ask(api, "retrain", int(api.owner["id"]), base=True)  # not an admin
            assert "Discord did not say who owns this bot" in text
            assert await store.runs() == []
            api.forbid_application = False  # Discord answers again: the owner is let in
            assert await ask(api, "retrain", int(api.owner["id"]), base=True) == (
                "no new ratings: nothing to retrain on"
            )

    run(tmp_path, scenario)


def test_a_slow_owner_lookup_still_answers_within_three_seconds(tmp_path: Path) -> None:
    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        owner = int(api.owner["id"])
        async with running_bot(api, s, store):
            api.route_delays[APP_INFO] = 5.0  # Discord slow to say who owns the application
            for name, options in (("retrain", {"base": True}), ("model", {"rollback": True})):
                rec = await api.invoke(name, options | {"base": True}, user_id=owner)
                await api.answered(rec, timeout=20)
                assert rec not in api.late_callbacks
                delay = rec.response_delay
                assert delay is not None and delay < 3.0, (name, delay)
                assert rec.deferred and all(r.ephemeral for r in rec.replies)
                assert rec.replies[-1].content.startswith("no ")  # nothing to retrain / roll back
            assert api.requests.count(APP_INFO) >= 2  # login's read, then is_owner's (slow)
            assert await store.runs() == []

    run(tmp_path, scenario)
