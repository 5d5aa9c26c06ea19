"""Links in outgoing text lose their tracking parameters before any platform sees them.

The essay has no links, so a link in a reply came from a model or a user; it is kept readable
but stripped of the parameters that identify who clicked (utm_*, fbclid, gclid and the like).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_URL = re.compile(r"https?://[^\s<>\"'`|]+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}’”"
_TRACKING = re.compile(
    r"utm_\w*|fbclid|gclid|dclid|gbraid|wbraid|msclkid|yclid|twclid|igshid|mc_cid|mc_eid"
    r"|_hsenc|_hsmi|mkt_tok|ref_src|ref_url|oly_anon_id|oly_enc_id|vero_id|s_cid|si",
    re.IGNORECASE,
)


def _clean(url: str) -> str:
    try:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:  # not a URL after all (a bad port, a stray bracket): leave it as text
        return url
    kept = [(key, value) for key, value in query if not _TRACKING.fullmatch(key)]
    if len(kept) == len(query):
        return url
    return urlunsplit(parts._replace(query=urlencode(kept)))


def strip_tracking(text: str, wrap: tuple[str, str] = ("", "")) -> str:
    """Every http(s) link without tracking parameters, optionally wrapped (Discord's `<…>`
    suppresses the preview embed)."""

    def replace(match: re.Match[str]) -> str:
        url = match.group(0)
        core = url.rstrip(_TRAILING)
        return f"{wrap[0]}{_clean(core)}{wrap[1]}{url[len(core) :]}"

    return _URL.sub(replace, text)
