"""What the bot needs in a channel for each command, checked before it does any work.

Discord sends the app's resolved permissions in the channel with every interaction
(`interaction.app_permissions`: roles and overwrites applied). A meme posted where the bot
cannot view the channel still appears (an interaction followup needs no permission), but its
reaction events never arrive, so votes would silently not count: the bot refuses up front and
names what a server admin has to grant.
"""

from __future__ import annotations

from collections.abc import Iterable

import discord

from bot.errors import MissingPermissions

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
    guild, member = interaction.guild, interaction.user
    if guild is None or not isinstance(member, discord.Member):
        return {interaction.channel_id} if interaction.channel_id else set()
    places: list[discord.abc.GuildChannel | discord.Thread] = [*guild.channels, *guild.threads]
    readable = set()
    for place in places:
        p = place.permissions_for(member)
        if p.view_channel and p.read_message_history:
            readable.add(place.id)
    return readable
