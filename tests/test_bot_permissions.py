"""The bot's permission checks: the table of what each action needs (plain values, no Discord),
then /meme, 🔁 and /retrain through the real discord.py client and the stand-in in channels
where the app lacks permissions: refused at once, ephemerally, naming what is missing, and
nothing made or queued; last, docs/BOT.md saying the same (its permissions table, naming every
registered command, its invite link's permissions and the intents)."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import discord
import pytest

from bot.errors import MissingPermissions, PostRefused, names_internals
from bot.permissions import NAMES, NEEDS, missing, needed, refused, refused_names, require
from harness.bot import bot_settings, migrated_store, running_bot, standin
from harness.discord_standin import ALL_BUT_ADMIN, DiscordStandIn
from memebot.settings import Settings
from memebot.store import NewGeneration, Store

EVERYTHING = discord.Permissions(ALL_BUT_ADMIN)


def without(*names: str, base: discord.Permissions = EVERYTHING) -> discord.Permissions:
    p = discord.Permissions(base.value)
    p.update(**dict.fromkeys(names, False))
    return p


MEME_ALL = [
    "View Channel",
    "Send Messages",
    "Attach Files",
    "Add Reactions",
    "Read Message History",
]


@pytest.mark.parametrize(
    ("action", "granted", "in_thread", "lacking"),
    [
        ("meme", EVERYTHING, False, []),
        ("meme", discord.Permissions.none(), False, MEME_ALL),
        ("meme", without("attach_files"), False, ["Attach Files"]),
        (
            "meme",
            without("add_reactions", "read_message_history"),
            False,
            ["Add Reactions", "Read Message History"],
        ),
        ("meme", without("embed_links", "manage_messages"), False, []),  # not used by a meme
        ("meme", discord.Permissions(administrator=True), False, []),  # grants everything
        ("meme", without("send_messages"), True, []),  # a thread asks the thread permission
        ("meme", without("send_messages_in_threads"), True, ["Send Messages in Threads"]),
        ("meme", without("send_messages_in_threads"), False, []),
        ("again", without("view_channel"), False, ["View Channel"]),
        ("again", discord.Permissions.none(), False, MEME_ALL),
        ("retrain", discord.Permissions(view_channel=True), False, ["Send Messages"]),
        ("retrain", without("attach_files", "add_reactions"), False, []),
        ("retrain", discord.Permissions.none(), False, ["View Channel", "Send Messages"]),
    ],
)
def test_what_each_action_needs(
    action: str, granted: discord.Permissions, in_thread: bool, lacking: list[str]
) -> None:
    assert missing(needed(action, in_thread=in_thread), granted) == lacking
    if not lacking:
        require(action, granted, in_thread=in_thread)
        return
    with pytest.raises(MissingPermissions) as e:
        require(action, granted, in_thread=in_thread)
    assert e.value.missing == lacking
    text = str(e.value)
    assert all(f"**{n}**" in text for n in lacking)
    assert not any(attr in text for attr in NAMES), "Discord's names, not discord.py's"


def test_every_permission_needed_has_a_name() -> None:
    assert {p for need in NEEDS.values() for p in need} <= set(NAMES)
    assert all(hasattr(discord.Permissions, p) for p in NAMES)


@pytest.mark.parametrize(
    ("act", "files", "in_thread", "names"),
    [
        ("answer", False, False, []),  # a followup: no Send Messages, no View Channel
        ("answer", True, False, ["Attach Files"]),
        ("message", False, False, ["Send Messages"]),
        ("message", True, True, ["Send Messages in Threads", "Attach Files"]),
        ("edit", False, False, ["Send Messages"]),
        ("reaction", False, False, ["Add Reactions", "Read Message History"]),
    ],
)
def test_what_a_refusal_means_the_bot_lacks(
    act: Any, files: bool, in_thread: bool, names: list[str]
) -> None:
    assert refused_names(act, files=files, in_thread=in_thread) == names


def forbidden() -> discord.Forbidden:
    """discord.py's error for Discord's 403 with code 50013."""
    response = SimpleNamespace(status=403, reason="Forbidden")
    return discord.Forbidden(response, {"message": "Missing Permissions", "code": 50013})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("act", "files", "named"),
    [
        ("answer", True, "I lack **Attach Files** here."),
        (
            "reaction",
            False,
            "I lack **Add Reactions** or **Read Message History** here (Discord does not say "
            "which).",
        ),
    ],
)
def test_a_refusal_is_told_in_plain_words_and_logged_once(
    act: Any, files: bool, named: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        error = refused(forbidden(), doing="post it", act=act, files=files, kept="It is kept.")
    assert isinstance(error, PostRefused) and error.missing == refused_names(act, files=files)
    text = str(error)
    assert text.startswith("Discord did not let me post it in this channel: ") and named in text
    assert "It is kept." in text and not names_internals(text) and "50013" not in text
    found = re.search(r"error id `([0-9a-f]{8})`", text)
    assert found, text
    (line,) = [r for r in caplog.records if found.group(1) in r.getMessage()]
    assert "403" in line.getMessage() and "Missing Permissions" in line.getMessage()


# -- through the stand-in ---------------------------------------------------------------------

Scenario = Callable[[DiscordStandIn, Settings, Store], Coroutine[Any, Any, None]]
PRIVATE = 900020  # a channel where the app lacks permissions


def run(tmp_path: Path, scenario: Scenario) -> None:
    async def go() -> None:
        # No engine listens: a command that passes the check fails later, at the engine.
        s = bot_settings(tmp_path, engine_url="http://127.0.0.1:9")
        async with standin() as api, migrated_store(s.database_url) as store:
            api.channel_ids.append(PRIVATE)
            await scenario(api, s, store)
            assert api.unhandled == [], api.unhandled

    asyncio.run(go())


@pytest.mark.slow
def test_meme_and_again_refuse_where_the_bot_cannot_post_or_see_votes(tmp_path: Path) -> None:
    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        api.app_permissions[PRIVATE] = without("attach_files", "view_channel").value
        async with running_bot(api, s, store):
            rec = await api.answered(
                await api.invoke("meme", {"template": "two-buttons"}, channel_id=PRIVATE)
            )
            (reply,) = rec.replies
            assert rec.callbacks[0]["type"] == 4 and reply.ephemeral  # refused, not deferred
            assert "**View Channel**" in reply.content and "**Attach Files**" in reply.content
            assert "Send Messages" not in reply.content
            # The refusal gave the cooldown turn back; in a channel with every permission the
            # check passes (and the meme fails later, at the engine nobody runs).
            ok = await api.answered(await api.invoke("meme", {"template": "two-buttons"}))
            assert ok.deferred and "not reachable" in ok.replies[-1].content
            button = {"type": 2, "style": 2, "label": "again", "custom_id": "memebot:again:1"}
            old = api.post_message(PRIVATE, components=[{"type": 1, "components": [button]}])
            again = await api.answered(await api.press_button(old.id, "memebot:again:1"))
            (reply,) = again.replies
            assert again.callbacks[0]["type"] == 4 and reply.ephemeral
            assert "**View Channel**" in reply.content
            assert (await store.stats(api.guild_id)).generations == 0

    run(tmp_path, scenario)


@pytest.mark.slow
def test_retrain_checks_it_can_post_before_it_queues(tmp_path: Path) -> None:
    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        api.app_permissions[PRIVATE] = without("send_messages").value
        async with running_bot(api, s, store):
            rec = await api.answered(await api.invoke("retrain", admin=True, channel_id=PRIVATE))
            (reply,) = rec.replies
            assert reply.ephemeral and "**Send Messages**" in reply.content
            assert "retrain's progress" in reply.content
            assert await store.current_run() is None, "nothing queued"
            assert not any(m.channel_id == PRIVATE and not m.ephemeral for m in api.sent)

    run(tmp_path, scenario)


async def rated_memes(api: DiscordStandIn, store: Store, memes: list[tuple[int, str]]) -> None:
    """A meme a channel, each with one 👍: (channel id, caption)."""
    for channel, caption in memes:
        # Posted on Discord (reconciliation at start-up drops memes whose message is gone).
        message_id = api.post_message(channel, caption).id
        await store.record_generation(
            NewGeneration(
                guild_id=api.guild_id,
                channel_id=channel,
                user_id=31,
                template="two-buttons",
                boxes=[caption, ""],
                message_id=message_id,
                model_version="v1",
            )
        )
        await store.set_vote(message_id, 32, 1)
        await api.react(message_id, "👍", 32, send=False)  # what reconciliation reads back


@pytest.mark.slow
def test_top_and_stats_show_only_channels_the_caller_can_read(tmp_path: Path) -> None:
    members = 900030  # the role that may read the private channel

    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        view = discord.Permissions(view_channel=True).value
        api.overwrites[PRIVATE] = [
            {"id": str(api.guild_id), "type": 0, "allow": "0", "deny": str(view)},  # @everyone
            {"id": str(members), "type": 0, "allow": str(view), "deny": "0"},
        ]
        await rated_memes(
            api, store, [(api.channel_ids[0], "open caption"), (PRIVATE, "secret caption")]
        )
        async with running_bot(api, s, store):
            outside = await api.answered(await api.invoke("top", {"period": "all"}))
            text = outside.replies[-1].content
            assert "open caption" in text and "secret" not in text and str(PRIVATE) not in text
            stats = await api.answered(await api.invoke("stats"))
            assert "Memes made: 1" in stats.replies[-1].content
            assert "Votes: 1 (1👍" in stats.replies[-1].content
            inside = await api.answered(
                await api.invoke("top", {"period": "all"}, roles=(members,))
            )
            assert "secret caption" in inside.replies[-1].content
            assert "open caption" in inside.replies[-1].content
            stats = await api.answered(await api.invoke("stats", roles=(members,)))
            assert "Memes made: 2" in stats.replies[-1].content

    run(tmp_path, scenario)


@pytest.mark.slow
def test_without_the_guild_in_the_cache_top_and_stats_show_the_current_channel(
    tmp_path: Path,
) -> None:
    """No guild in the bot's cache (its channels and overwrites unknown, here after a
    GUILD_DELETE): /top and /stats show the channel the command was run in, nothing else."""
    here, there = 900040, 900041

    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        api.channel_ids += [here, there]
        await rated_memes(api, store, [(here, "caption here"), (there, "caption there")])
        async with running_bot(api, s, store) as bot:
            cached = await api.answered(await api.invoke("stats", channel_id=here))
            assert "Memes made: 2" in cached.replies[-1].content  # the cache: both readable
            await api.remove_bot()
            for _ in range(500):
                if bot.get_guild(api.guild_id) is None:
                    break
                await asyncio.sleep(0.01)
            assert bot.get_guild(api.guild_id) is None
            top = await api.answered(await api.invoke("top", {"period": "all"}, channel_id=here))
            text = top.replies[-1].content
            assert "caption here" in text and "caption there" not in text
            stats = await api.answered(await api.invoke("stats", channel_id=here))
            assert "Memes made: 1" in stats.replies[-1].content
            assert "Votes: 1 (1👍" in stats.replies[-1].content

    run(tmp_path, scenario)


# -- docs/BOT.md says the same ----------------------------------------------------------------

BOT_MD = Path(__file__).resolve().parents[1] / "docs" / "BOT.md"


def table_after(text: str, heading: str) -> list[list[str]]:
    """The cells of the first Markdown table after `heading` (header and rule left out)."""
    rest = text[text.index(heading) :]
    lines = rest[rest.index("\n|") + 1 :].split("\n")
    rows = []
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def documented_needs() -> dict[str, list[str]]:
    """docs/BOT.md's permissions table: command ("again" for 🔁) -> the permissions listed."""
    needs: dict[str, list[str]] = {}
    for commands, perms, _why in table_after(BOT_MD.read_text(), "### Permissions each"):
        names = re.findall(r"`/([a-z-]+)`", commands) + (["again"] if "🔁" in commands else [])
        assert names, commands
        for name in names:
            needs[name] = [] if perms == "none" else perms.split(", ")
    return needs


def test_the_docs_table_and_invite_link_are_what_the_bot_checks() -> None:
    needs = documented_needs()
    for action, attrs in NEEDS.items():
        assert needs[action] == [NAMES[p] for p in attrs], action
    assert {n for n, perms in needs.items() if perms} == set(NEEDS), "a need not in the code"
    # The invite link asks for every permission some command needs, and no other.
    text = BOT_MD.read_text()
    (asked,) = set(re.findall(r"authorize\?[^`\s]*permissions=(\d+)", text))
    every = {p for attrs in NEEDS.values() for p in attrs}
    assert int(asked) == discord.Permissions(**dict.fromkeys(every, True)).value


def test_the_docs_list_the_intents_the_bot_asks_for() -> None:
    from bot.app import INTENTS

    rows = table_after(BOT_MD.read_text(), "The gateway intents the bot asks for")
    assert {r[0].strip("`") for r in rows} == {name for name, on in INTENTS if on}


@pytest.mark.slow
def test_the_docs_table_names_every_registered_command(tmp_path: Path) -> None:
    async def scenario(api: DiscordStandIn, s: Settings, store: Store) -> None:
        async with running_bot(api, s, store):
            registered = set(api.visible_commands(api.guild_id))
        assert registered and registered == set(documented_needs()) - {"again"}

    run(tmp_path, scenario)
