"""The /help page, built from the commands the bot registers (a command added, renamed or
given a new option shows up without editing this file) and a few fixed lines on votes, the
🔁 button and who may retrain."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from discord import app_commands

Command = app_commands.Command[Any, Any, Any]
# What CommandTree.get_commands() gives (context menus have no description: left out).
TreeItem = Command | app_commands.Group | app_commands.ContextMenu

MAX_HELP = 2000  # one Discord message

HOW_IT_WORKS = (
    "**Votes**: react {up} or {down} under a meme the bot posted; each person's latest "
    "reaction counts, removing it takes the vote back. The votes decide `/top` and teach the "
    "model what people here like.",
    "**🔁 Another one**: the button under a meme makes another caption with the same template "
    "and options (a new seed); it keeps working after the bot restarts.",
    "**Who retrains**: a server's administrators retrain their server's taste from its votes "
    "(`/retrain`); only the bot's owner retrains the shared model every server uses "
    "(`/retrain base:true`, `/model rollback:true base:true`).",
)


def _is_admin_only(cmd: Command) -> bool:
    perms = cmd.default_permissions
    return perms is not None and perms.administrator


def _usage(cmd: Command) -> str:
    parts = [f"/{cmd.qualified_name}"]
    for p in cmd.parameters:
        parts.append(p.display_name if p.required else f"[{p.display_name}]")
    return " ".join(parts)


def _commands(tree: Iterable[TreeItem]) -> list[Command]:
    out: list[Command] = []
    for item in tree:
        if isinstance(item, app_commands.Group):
            out += _commands(item.commands)
        elif isinstance(item, app_commands.Command):
            out.append(item)
    return sorted(out, key=lambda c: c.qualified_name)


def help_text(
    tree: Iterable[TreeItem],
    *,
    up: str = "👍",
    down: str = "👎",
) -> str:
    """The whole page: everyone's commands, then the admins', then how votes and 🔁 work."""
    cmds = _commands(tree)
    everyone = [c for c in cmds if not _is_admin_only(c)]
    admins = [c for c in cmds if _is_admin_only(c)]
    lines = ["**Meme bot commands**"]
    lines += [f"`{_usage(c)}`: {c.description}" for c in everyone]
    if admins:
        lines.append("**For server admins**")
        lines += [f"`{_usage(c)}`: {c.description}" for c in admins]
    lines.append("")
    lines += [t.format(up=up, down=down) for t in HOW_IT_WORKS]
    text = "\n".join(lines)
    if len(text) > MAX_HELP:  # descriptions are kept short; a long one must not lose the page
        text = text[: MAX_HELP - 1] + "…"
    return text
