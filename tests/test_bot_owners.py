"""Who owns the bot (bot/owners.py): MEMEBOT_OWNER_IDS and discord.py's `is_owner`, first as
plain functions, then through the real bot against the Discord stand-in, whose application
info names an owner or a team: only owners retrain or roll back the shared base model."""

from __future__ import annotations

import asyncio

import discord
from discord.ext import commands

from bot.owners import OWNERS, is_owner, listed_owner, owner_only_text
from memebot.settings import Settings


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
