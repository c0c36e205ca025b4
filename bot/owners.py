"""Who owns the bot: the Discord application's owner, or the admins and developers of the team
that owns it (discord.py's `Bot.is_owner`, which asks Discord once and caches the answer), plus
the users on MEMEBOT_OWNER_IDS. The shared base model serves every server, so only its owners
retrain or roll it back from Discord; a server's administrators manage their own server.
"""

from __future__ import annotations

from collections.abc import Iterable

import discord
from discord.ext import commands

from memebot.errors import MemebotError
from memebot.logs import get_logger

log = get_logger(__name__)

# Who may touch the base model, as a refusal names them.
OWNERS = "the Discord application's owner or team, or a user on MEMEBOT_OWNER_IDS"


class OwnerCheckFailed(MemebotError):
    """Discord did not say who owns the application (its API down or refusing)."""


def listed_owner(user_id: int, owner_ids: Iterable[int]) -> bool:
    """On MEMEBOT_OWNER_IDS (no Discord call)."""
    return user_id in set(owner_ids)


def owner_only_text(action: str) -> str:
    """The polite refusal of a base-model action to a non-owner, naming who can."""
    return f"Only the bot's owner can {action} ({OWNERS})."


async def is_owner(
    bot: commands.Bot, user: discord.User | discord.Member, owner_ids: Iterable[int]
) -> bool:
    """MEMEBOT_OWNER_IDS first (no request), then the application's owner or team members
    (discord.py fetches /oauth2/applications/@me the first time and keeps the ids)."""
    if listed_owner(user.id, owner_ids):
        return True
    try:
        return await bot.is_owner(user)
    except discord.HTTPException as e:
        # Refuse rather than guess: the caller can try again once Discord answers.
        log.warning("could not read the application's owner from Discord: %s", e)
        raise OwnerCheckFailed(
            "Discord did not say who owns this bot just now; please try again in a minute."
        ) from e
