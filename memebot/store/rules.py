"""The store's rules as plain functions: what reactions mean as votes, which settings are valid.
No database needed to test them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from memebot.choices import FILTER_LEVELS, STYLES
from memebot.errors import UsageError

VOTE_VALUES = (1, -1)
GUILD_SETTING_FIELDS = ("filter_level", "default_style", "allowed_channel_ids")


def wanted_votes(up: set[int], down: set[int], stored: dict[int, int]) -> dict[int, int]:
    """The votes the reactions imply (see Store.reconcile for the rule)."""
    wanted = {u: 1 for u in up - down} | {u: -1 for u in down - up}
    for u in up & down:
        wanted[u] = stored.get(u, 1)
    return wanted


def check_vote_value(value: int) -> None:
    if value not in VOTE_VALUES:
        raise ValueError(f"vote value must be +1 or -1, not {value!r}")


def check_guild_changes(changes: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(changes) - set(GUILD_SETTING_FIELDS))
    if unknown:
        raise UsageError(
            f"unknown guild setting(s) {', '.join(unknown)}; "
            f"known: {', '.join(GUILD_SETTING_FIELDS)}"
        )
    values = dict(changes)
    if "filter_level" in values and values["filter_level"] not in FILTER_LEVELS:
        raise UsageError(
            f"filter_level={values['filter_level']!r}: choose one of {', '.join(FILTER_LEVELS)}"
        )
    if "default_style" in values and not (
        values["default_style"] is None or values["default_style"] in STYLES
    ):
        raise UsageError(
            f"default_style={values['default_style']!r}: choose one of {', '.join(STYLES)}"
        )
    if "allowed_channel_ids" in values:
        ids = values["allowed_channel_ids"]
        if not isinstance(ids, Iterable) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in ids
        ):
            raise UsageError(f"allowed_channel_ids={ids!r}: expected channel ids (integers)")
        values["allowed_channel_ids"] = sorted(set(ids))
    return values
