"""Slash commands are synced only when they changed, and the scope not in use is cleaned up.

Discord limits command updates (200 a day per guild) and a global sync takes a while to reach
every client, so syncing on every start wastes both. The digest of what was last synced, its
application and its scope (global, or the test guilds) are kept in the data directory; a start
with the same commands in the same scope makes no request at all. Moving between global and
guild sync empties the scope left behind, so no server sees each command twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import discord
from discord import app_commands

logger = logging.getLogger(__name__)
STATE_FILE = "discord-commands.json"


def digest(tree: app_commands.CommandTree[Any]) -> str:
    """A hash of the command payloads exactly as they would be sent to Discord."""
    payload = sorted(
        (command.to_dict(tree) for command in tree.get_commands()),
        key=lambda c: (c["name"], c.get("type", 1)),
    )
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _read(path: Path) -> dict[str, Any] | None:
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


async def sync_commands(
    client: discord.Client,
    tree: app_commands.CommandTree[Any],
    guild_ids: tuple[int, ...],
    state_path: Path,
) -> bool:
    """Syncs the tree to `guild_ids` (or globally when empty) if it changed; True if it synced."""
    application_id = client.application_id
    if application_id is None:  # not logged in: nothing to compare with
        return False
    wanted = {
        "application_id": str(application_id),
        "digest": digest(tree),
        "guilds": sorted(guild_ids),
    }
    before = _read(state_path)
    if before == wanted:
        logger.info("slash commands unchanged; not synced")
        return False
    same_app = before is not None and before.get("application_id") == wanted["application_id"]
    old_guilds = set(before.get("guilds") or []) if before and same_app else set()
    if guild_ids:
        for guild_id in guild_ids:
            guild = discord.Object(id=guild_id)
            tree.copy_global_to(guild=guild)
            await tree.sync(guild=guild)
        if not same_app or not before or not before.get("guilds"):
            # Global commands from before (or from a release that always synced globally).
            await client.http.bulk_upsert_global_commands(application_id, [])
    else:
        await tree.sync()
    for guild_id in sorted(old_guilds - set(guild_ids)):
        await client.http.bulk_upsert_guild_commands(application_id, guild_id, [])
    try:
        state_path.parent.mkdir(parents=True, exist_ok=True)
        state_path.write_text(json.dumps(wanted))
    except OSError as exc:
        logger.warning("could not keep the command digest (%s); the next start syncs again", exc)
    logger.info(
        "slash commands synced %s", f"to guilds {list(guild_ids)}" if guild_ids else "globally"
    )
    return True
