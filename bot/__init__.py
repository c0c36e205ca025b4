"""The Discord bot: one cog per feature (cogs/), the logic in plain modules tested without
Discord (memes.py, votes.py, lifecycle.py); it speaks to the engine through engine.client and
keeps memes and votes in memebot.store. See docs/BOT.md."""
