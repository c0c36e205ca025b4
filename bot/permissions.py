"""What the bot needs in a channel for each command, checked before it does any work.

Discord sends the app's resolved permissions in the channel with every interaction
(`interaction.app_permissions`: roles and overwrites applied). A meme posted where the bot
cannot view the channel still appears (an interaction followup needs no View Channel or Send
Messages; only its file needs Attach Files), but its reaction events never arrive, so votes
would silently not count: the bot refuses up front and names what a server admin has to grant.

`app_permissions` can still be wrong when the bot acts (a permission changed meanwhile, an
overwrite Discord applies later): Discord then answers 403 (code 50013, "Missing
Permissions", naming nothing). `refused` names what it must have been from what was sent,
by the rules Discord applies (see REFUSED), logs one line with an error id and gives the
error the command answers with.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import discord

from bot.errors import MissingPermissions, PostRefused, new_error_id
from memebot.logs import get_logger

log = get_logger(__name__)

# Permission attribute (discord.Permissions) -> the name Discord's settings show.
NAMES = {
    "view_channel": "View Channel",
    "send_messages": "Send Messages",
    "send_messages_in_threads": "Send Messages in Threads",
    "attach_files": "Attach Files",
    "add_reactions": "Add Reactions",
    "read_message_history": "Read Message History",
    "embed_links": "Embed Links",
}

# What each action needs. A meme: the image (Attach Files), the vote reactions (Add Reactions;
# Read Message History, which Discord asks for to react to a message), and View Channel for the
# reaction events. /retrain posts a progress message in the channel and edits it.
NEEDS: dict[str, tuple[str, ...]] = {
    "meme": (
        "view_channel",
        "send_messages",
        "attach_files",
        "add_reactions",
        "read_message_history",
    ),
    "again": (
        "view_channel",
        "send_messages",
        "attach_files",
        "add_reactions",
        "read_message_history",
    ),
    "retrain": ("view_channel", "send_messages"),
}

WHAT = {
    "meme": "post memes",
    "again": "post memes",
    "retrain": "post the retrain's progress",
}


def needed(action: str, *, in_thread: bool = False) -> tuple[str, ...]:
    """The permission attributes `action` needs (in a thread Discord checks Send Messages in
    Threads instead of Send Messages)."""
    need = NEEDS[action]
    if in_thread:
        need = tuple("send_messages_in_threads" if p == "send_messages" else p for p in need)
    return need


def missing(need: Iterable[str], granted: discord.Permissions) -> list[str]:
    """The display names of the permissions in `need` that `granted` lacks, in `need`'s order
    (Administrator grants everything)."""
    if granted.administrator:
        return []
    return [NAMES[p] for p in need if not getattr(granted, p)]


def require(action: str, granted: discord.Permissions, *, in_thread: bool = False) -> None:
    """Raises MissingPermissions naming what the bot lacks in this channel for `action`."""
    lacking = missing(needed(action, in_thread=in_thread), granted)
    if lacking:
        names = ", ".join(f"**{n}**" for n in lacking)
        raise MissingPermissions(
            f"I cannot {WHAT[action]} in this channel: I am missing {names}. "
            "A server admin can grant me these in the channel's permissions.",
            lacking,
        )


def require_here(action: str, interaction: discord.Interaction) -> None:
    """`require` with what the interaction says about its channel."""
    thread = isinstance(interaction.channel, discord.Thread)
    require(action, interaction.app_permissions, in_thread=thread)


def readable_channels(interaction: discord.Interaction) -> set[int]:
    """The ids of the guild's channels and cached threads where the caller can read the
    messages (View Channel and Read Message History, roles and overwrites applied): what /top
    and /stats may show them. Without the guild in the cache: the current channel alone."""
    member = interaction.user
    # Not `interaction.guild`: for a guild it has not cached, discord.py makes a stand-in
    # guild with no channels (Interaction.guild falls back to it), which would show nothing.
    guild = interaction.client.get_guild(interaction.guild_id) if interaction.guild_id else None
    if guild is None or not isinstance(member, discord.Member):
        return {interaction.channel_id} if interaction.channel_id else set()
    places: list[discord.abc.GuildChannel | discord.Thread] = [*guild.channels, *guild.threads]
    readable = set()
    for place in places:
        p = place.permissions_for(member)
        if p.view_channel and p.read_message_history:
            readable.add(place.id)
    return readable


# Discord's JSON error code for a post, an edit or a reaction the bot may not make.
MISSING_PERMISSIONS = 50013

# What the bot did -> the permissions Discord checks for it. An interaction's answer (its
# followups and their edits) is a webhook message: no Send Messages or View Channel, but a
# file in it needs the bot's Attach Files. A channel message needs Send Messages (and Attach
# Files for a file), an edit of one Send Messages; a reaction Read Message History and, for
# an emoji not yet on the message, Add Reactions.
Act = Literal["answer", "message", "edit", "reaction"]
CHECKED: dict[Act, tuple[str, ...]] = {
    "answer": (),
    "message": ("send_messages",),
    "edit": ("send_messages",),
    "reaction": ("add_reactions", "read_message_history"),
}


def refused_names(act: Act, *, files: bool = False, in_thread: bool = False) -> list[str]:
    """The display names of the permissions one of which Discord's 403 to `act` says the bot
    lacks (the answer does not say which)."""
    need = CHECKED[act] + (("attach_files",) if files else ())
    if in_thread:
        need = tuple("send_messages_in_threads" if p == "send_messages" else p for p in need)
    return [NAMES[p] for p in need]


def refused(
    error: discord.HTTPException,
    *,
    doing: str,
    act: Act,
    files: bool = False,
    in_thread: bool = False,
    kept: str = "",
    context: str = "",
) -> PostRefused:
    """What to tell the user after Discord refused (403, code 50013) `doing` (e.g. "post your
    meme"); logs it once, with the error id the text gives. `kept`: a sentence saying what
    was not lost."""
    lacking = refused_names(act, files=files, in_thread=in_thread)
    eid = new_error_id()
    log.warning(
        "Discord refused to let the bot %s (%s %s; lacking %s, though the interaction's "
        "permissions allowed it) (error id %s, %s)",
        doing,
        error.status,
        error.text or error.code,
        " or ".join(lacking) or "a permission",
        eid,
        context,
    )
    bold = [f"**{n}**" for n in lacking]
    if len(bold) > 1:
        names = ", ".join(bold[:-1]) + f" or {bold[-1]} here (Discord does not say which)"
    else:
        names = (bold[0] if bold else "a permission") + " here"
    text = (
        f"Discord did not let me {doing} in this channel: I lack {names}. "
        + (f"{kept} " if kept else "")
        + f"A server admin can grant it in the channel's permissions (error id `{eid}`)."
    )
    return PostRefused(text, lacking)
