"""Discord message → the plain text the core reads: mentions as names, no links, no markup."""

from __future__ import annotations

import re
from dataclasses import dataclass

import discord

_USER = re.compile(r"<@!?(\d+)>")
_ROLE = re.compile(r"<@&(\d+)>")
_CHANNEL = re.compile(r"<#(\d+)>")
_EVERYONE = re.compile(r"@(?:everyone|here)\b")
_CUSTOM_EMOJI = re.compile(r"<a?:\w+:\d+>")
_SLASH_COMMAND = re.compile(r"</([\w -]+):\d+>")
_TIMESTAMP = re.compile(r"<t:-?\d+(?::[tTdDfFR])?>")
_MASKED_LINK = re.compile(r"\[([^\]\n]*)\]\(<?https?://[^\s)>]*>?\)")
_LINK = re.compile(r"<?https?://[^\s<>]+>?", re.IGNORECASE)
_CODE_FENCE = re.compile(r"```(?:[\w+-]*\n)?")
_LINE_MARKUP = re.compile(r"^(?:>>> |> |#{1,3} |-# )", re.MULTILINE)
_EMPHASIS = re.compile(r"\*\*|__|~~|\|\||[*`]|(?<!\w)_|_(?!\w)")
_ESCAPE = re.compile(r"\\(?=[\\*_~`|>#\-\[\]()])")


@dataclass(frozen=True)
class Cleaned:
    """The plain text and whether the bot was addressed in it (its user or its managed role)."""

    text: str
    addressed: bool


def is_own_role(role: discord.Role, me_id: int) -> bool:
    """The role Discord manages for this bot, which autocomplete often offers instead of the bot."""
    return role.tags is not None and role.tags.bot_id == me_id


def plain_text(message: discord.Message, me_id: int) -> Cleaned:
    """What a reader sees, as words: user, role and channel mentions become names (the bot's
    own are dropped), custom emoji, links and markdown go; the original stays in `content`."""
    return clean(
        message.content,
        me_id,
        guild=message.guild,
        users={user.id: user.display_name for user in message.mentions},
        roles={role.id: role for role in message.role_mentions},
    )


def clean(
    text: str,
    me_id: int,
    *,
    guild: discord.Guild | None = None,
    users: dict[int, str] | None = None,
    roles: dict[int, discord.Role] | None = None,
) -> Cleaned:
    """`plain_text` for any text (a slash command's option too), resolving names from the guild."""
    known_users = users or {}
    known_roles = roles or {}
    addressed = False

    def user(match: re.Match[str]) -> str:
        nonlocal addressed
        user_id = int(match.group(1))
        if user_id == me_id:
            addressed = True
            return ""
        if user_id in known_users:
            return known_users[user_id]
        member = guild.get_member(user_id) if guild else None
        return member.display_name if member else ""

    def role(match: re.Match[str]) -> str:
        nonlocal addressed
        role_id = int(match.group(1))
        found = known_roles.get(role_id) or (guild.get_role(role_id) if guild else None)
        if found is None:
            return ""
        if is_own_role(found, me_id):
            addressed = True
            return ""
        return found.name

    def channel(match: re.Match[str]) -> str:
        found = guild.get_channel_or_thread(int(match.group(1))) if guild else None
        return f"#{found.name}" if found is not None else ""

    text = _USER.sub(user, text)
    text = _ROLE.sub(role, text)
    text = _CHANNEL.sub(channel, text)
    text = _EVERYONE.sub("", text)
    text = _SLASH_COMMAND.sub(r"/\1", text)
    text = _CUSTOM_EMOJI.sub("", text)
    text = _TIMESTAMP.sub("", text)
    text = _MASKED_LINK.sub(r"\1", text)
    text = _LINK.sub("", text)
    text = _CODE_FENCE.sub("", text)
    text = _LINE_MARKUP.sub("", text)
    text = _ESCAPE.sub("", text)
    text = _EMPHASIS.sub("", text)
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    text = re.sub(r"\s+([?!.,;:])", r"\1", text)
    return Cleaned(text.strip(), addressed)


_QUESTION_START = re.compile(
    r"^(?:who|whom|whose|what|wat|when|where|why|how|which|is|are|was|were|do|does|did|can|"
    r"could|should|would|will|has|have|had|tell me|explain|describe)\b",
    re.IGNORECASE,
)


def looks_like_question(text: str) -> bool:
    """A general question test for threads: a question mark, or a question or request opening
    one of its sentences. Chatter ("lol ok, brb") is neither and is left to the people."""
    if "?" in text:
        return True
    return any(_QUESTION_START.match(part.strip()) for part in re.split(r"[.!\n]+", text))
