"""Discord payloads (users, members, channels, the guild, messages) as discord.py reads them."""

from __future__ import annotations

import time
from typing import Any

from harness.discord_standin.records import ADMINISTRATOR, ALL_BUT_ADMIN, Sent, iso_time


class Payloads:
    app_id: int
    bot_user: dict[str, Any]
    owner: dict[str, Any]
    team: dict[int, str] | None
    guild_id: int
    channel_ids: list[int]
    nsfw_channel_ids: set[int]  # age-restricted channels
    admin_role_id: int
    url: str
    overwrites: dict[int, list[dict[str, Any]]]

    @property
    def gateway_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/gateway"

    @staticmethod
    def user(user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
        return {
            "id": str(user_id),
            "username": name,
            "discriminator": "0",
            "global_name": name,
            "avatar": None,
            "bot": bot,
        }

    def member(
        self, user_id: int, *, admin: bool = False, roles: tuple[int, ...] = ()
    ) -> dict[str, Any]:
        return {
            "user": self.user(user_id, f"user{user_id}"),
            "roles": [str(r) for r in ((self.admin_role_id,) if admin else ()) + roles],
            "joined_at": iso_time(0),
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "nick": None,
            "permissions": str(ADMINISTRATOR | ALL_BUT_ADMIN if admin else ALL_BUT_ADMIN),
        }

    def application(self) -> dict[str, Any]:
        """The application info (GET /oauth2/applications/@me). Owned by `owner`, or with
        `team` set ({user id: role}) by a team: then, like Discord, `owner` is the team's
        pseudo-user (flag TEAM_USER) and the members carry their roles (admin, developer,
        read_only); discord.py counts admins and developers as owners."""
        team = None
        owner = self.owner
        if self.team is not None:
            team_id = str(self.app_id + 1)
            first = next(iter(self.team), None)  # the team's owner: its first member
            owner = self.user(self.app_id + 1, f"team{team_id}") | {"flags": 1 << 10}
            team = {
                "id": team_id,
                "name": "memebot team",
                "icon": None,
                "owner_user_id": str(first) if first is not None else None,
                "members": [
                    {
                        "user": self.user(uid, f"user{uid}"),
                        "membership_state": 2,  # accepted
                        "permissions": ["*"],
                        "team_id": team_id,
                        "role": role,
                    }
                    for uid, role in self.team.items()
                ],
            }
        return {
            "id": str(self.app_id),
            "name": "memebot",
            "description": "",
            "icon": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "owner": owner,
            "verify_key": "0" * 64,
            "flags": 0,
            "team": team,
            "interactions_endpoint_url": None,
        }

    def channel(self, channel_id: int) -> dict[str, Any]:
        return {
            "id": str(channel_id),
            "type": 0,
            "guild_id": str(self.guild_id),
            "name": f"memes-{channel_id}",
            "position": self.channel_ids.index(channel_id),
            "permission_overwrites": self.overwrites.get(channel_id, []),
            "nsfw": channel_id in self.nsfw_channel_ids,
            "parent_id": None,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
        }

    def guild(self) -> dict[str, Any]:
        role = {
            "id": str(self.guild_id),
            "name": "@everyone",
            "permissions": str(ALL_BUT_ADMIN),
            "position": 0,
            "color": 0,
            "hoist": False,
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }
        admin = role | {"id": str(self.admin_role_id), "name": "admins", "position": 1}
        admin["permissions"] = str(ADMINISTRATOR | ALL_BUT_ADMIN)
        return {
            "id": str(self.guild_id),
            "name": "Stand-in Guild",
            "icon": None,
            "owner_id": self.owner["id"],
            "roles": [role, admin],
            "emojis": [],
            "stickers": [],
            "features": [],
            "channels": [self.channel(c) for c in self.channel_ids],
            "threads": [],
            "members": [self.member(int(self.bot_user["id"]))],
            "member_count": 2,
            "large": False,
            "unavailable": False,
            "joined_at": iso_time(0),
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "preferred_locale": "en-US",
            "system_channel_flags": 0,
        }

    def _message(self, sent: Sent) -> dict[str, Any]:
        return {
            "id": str(sent.id),
            "channel_id": str(sent.channel_id),
            "guild_id": str(self.guild_id),
            "author": self.bot_user,
            "content": sent.content,
            "timestamp": iso_time(time.time()),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [
                {
                    "id": str(sent.id + i + 1),
                    "filename": a.filename,
                    "size": len(a.data),
                    "url": f"{self.url}/attachments/{sent.id}/{a.filename}",
                    "proxy_url": f"{self.url}/attachments/{sent.id}/{a.filename}",
                    "content_type": a.content_type,
                    "description": a.description,
                }
                for i, a in enumerate(sent.attachments)
            ],
            "embeds": [],
            "pinned": False,
            "type": 0 if sent.interaction_token is None else 20,
            "flags": sent.flags,
            "components": sent.components,
            "webhook_id": str(self.app_id) if sent.interaction_token else None,
            "application_id": str(self.app_id),
        }
