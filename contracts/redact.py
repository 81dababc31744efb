"""Keys never appear in full in any output: only their 9-character prefix, then '…'. And a target's answer
is quoted as a clean excerpt: its text, never cut mid-word."""

from __future__ import annotations

import html
import re
import shlex
from collections.abc import Iterable, Mapping
from typing import Any

_KEY = re.compile(r"(sk-[A-Za-z0-9]{6})[.][0-9A-Za-z]+")
_TAG = re.compile(r"<(head|script|style)\b.*?</\1\s*>|<[^>]*>", re.IGNORECASE | re.DOTALL)  # with their text


def redact(text: str, keys: Iterable[str] = ()) -> str:
    """`text` with every known key, and anything shaped like a full key, cut to its prefix."""
    for key in keys:
        if key:
            text = text.replace(key, key[:9] + "…")
    return _KEY.sub(r"\1…", text)


def curl(method: str, url: str, headers: Mapping[str, str], body: bytes | None, keys: Iterable[str] = ()) -> str:
    """A runnable curl command for one request, keys redacted (put yours back to replay it)."""
    parts = ["curl", "-X", method, shlex.quote(url)]
    for name, value in headers.items():
        if name.lower() in ("user-agent", "accept-encoding", "connection", "accept", "content-length"):
            continue
        parts += ["-H", shlex.quote(f"{name}: {value}")]
    if body:
        parts += ["-d", shlex.quote(body.decode("utf-8", "replace"))]
    return redact(" ".join(parts), keys)


def shown(value: Any, keys: Iterable[str] = ()) -> str:
    return redact(str(value), keys)


def excerpt(body: str, limit: int = 120) -> str:
    """An answer's body quoted in one line: an HTML page's visible text (no tags, head or scripts), white
    space and control characters collapsed, keys redacted, and when long its first words up to `limit`
    characters, then '…'."""
    text = " ".join("".join(c if c.isprintable() else " " for c in html.unescape(_TAG.sub(" ", body))).split())
    text = redact(text)
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    return text[: cut if cut > 0 else limit] + "…"
