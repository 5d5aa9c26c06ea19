"""Links from a logged exchange back to the reply on its platform ("jump to message").

A permalink the platform gave (Slack's `chat.getPermalink`) is used as stored; otherwise the
link is built from the stored ids in the platform's own form. Only http(s) links to the
platform's hosts are ever returned, so a stored value cannot turn into a script link.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

_SLACK_TS = re.compile(r"^\d{1,12}\.\d{1,9}$")
_SNOWFLAKE = re.compile(r"^\d{1,20}$")
_HOSTS = {"discord": ("discord.com",), "slack": ("slack.com",)}


def _safe(url: str, platform: str) -> bool:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    allowed = _HOSTS.get(platform, ())
    return parts.scheme == "https" and any(host == h or host.endswith("." + h) for h in allowed)


def jump_link(
    platform: str,
    tenant: str,
    channel: str,
    thread: str,
    message_id: str | None,
    permalink: str | None = None,
) -> str | None:
    """The URL that opens the reply on its platform, or None when there is nothing to link to.

    Slack: `https://<team>.slack.com/archives/<channel>/p<ts without the dot>` (in a thread,
    with `?thread_ts=<thread ts>&cid=<channel>`). Discord:
    `https://discord.com/channels/<guild or @me>/<channel or thread>/<message>`.
    """
    if permalink and _safe(permalink, platform):
        return permalink
    if not message_id:
        return None
    if platform == "slack" and _SLACK_TS.match(message_id) and tenant and channel:
        url = (
            f"https://{quote(tenant.lower(), safe='')}.slack.com/archives/"
            f"{quote(channel, safe='')}/p{message_id.replace('.', '')}"
        )
        if thread and _SLACK_TS.match(thread) and thread != message_id:
            url += f"?thread_ts={thread}&cid={quote(channel, safe='')}"
        return url
    if platform == "discord" and _SNOWFLAKE.match(message_id):
        guild = tenant if _SNOWFLAKE.match(tenant) else "@me"
        where = thread or channel
        if not _SNOWFLAKE.match(where):
            return None
        return f"https://discord.com/channels/{guild}/{where}/{message_id}"
    return None
