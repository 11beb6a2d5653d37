"""Security headers on every response of the gateway (installed by bot.inbox.install, so the web chat too).

- Every response: `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`, `X-Frame-Options: DENY`;
  `Strict-Transport-Security` when served over HTTPS, or when the gateway is in production or public on HTTPS.
- Every HTML page: a strict Content-Security-Policy (no script, style or image but the gateway's own files, no
  framing, forms only to itself), unless the page set its own. The web chat page (`/`) carries its script and
  style inline: it gets the same policy with the SHA-256 of exactly those inline blocks allowed, nothing else
  (what it inserts at serving time is a JSON data block with "<" escaped, which is never run).
- Everything under /inbox/ but its two static files: `Cache-Control: no-store` (young people's words, API
  answers): no browser or proxy keeps a copy.

A pure ASGI middleware: it changes the response's start, and buffers the body only of the pages with inline code.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.datastructures import MutableHeaders

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self';"
    " form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
ALWAYS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}
HSTS = "max-age=31536000"  # a year; no includeSubDomains: the operator's other hosts are not ours to decide
INLINE_PAGES = frozenset({"/"})  # pages whose own inline script and style are allowed by their hash
NOT_KEPT = "/inbox/"
KEPT = ("/inbox/static/",)  # the inbox's script and style sheet: no-cache (they say so themselves)
_INLINE = re.compile(rb"<(script|style)\b([^>]*)>(.*?)</\1\s*>", re.DOTALL | re.IGNORECASE)
_DATA_BLOCK = re.compile(rb"\btype\s*=\s*[\"']?application/(ld\+)?json", re.IGNORECASE)
_SOURCE = re.compile(rb"\bsrc\s*=", re.IGNORECASE)


def inline_policy(html: bytes) -> str:
    """The strict policy, with the hashes of `html`'s inline scripts and styles allowed (none: the strict one)."""
    scripts: list[str] = []
    styles: list[str] = []
    for kind, attributes, body in _INLINE.findall(html):
        if kind.lower() == b"script" and (_SOURCE.search(attributes) or _DATA_BLOCK.search(attributes)):
            continue  # a file of ours (script-src 'self') or data, never run
        source = "'sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode() + "'"
        (scripts if kind.lower() == b"script" else styles).append(source)
    policy = POLICY
    if scripts:
        policy = policy.replace("script-src 'self'", "script-src 'self' " + " ".join(scripts))
    if styles:
        policy = policy.replace("style-src 'self'", "style-src 'self' " + " ".join(styles))
    return policy


def _https_everywhere(scope: Scope) -> bool:
    """Production, or a public address on HTTPS: the settings of the gateway serving this request, if installed."""
    gateway = getattr(getattr(scope.get("app"), "state", None), "gateway", None)
    settings = getattr(gateway, "settings", None)
    if settings is None:
        return False
    return bool(settings.environment == "production" or settings.public_url.startswith("https://"))


class SecurityHeaders:
    """The headers above on every HTTP response of `app`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; add the headers to the response's start (and hash inline code where allowed)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        hsts = scope.get("scheme") == "https" or _https_everywhere(scope)
        no_store = path.startswith(NOT_KEPT) and not path.startswith(KEPT)
        start: Message | None = None
        held: list[bytes] = []

        async def send_with_headers(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)  # edits the message's own list (repeated cookies kept)
                for name, value in ALWAYS.items():
                    headers.setdefault(name, value)
                if hsts:
                    headers.setdefault("strict-transport-security", HSTS)
                if no_store:
                    headers["cache-control"] = "no-store"
                if headers.get("content-type", "").startswith("text/html") and "content-security-policy" not in headers:
                    if path in INLINE_PAGES:
                        start = message  # its policy needs the whole body first
                        return
                    headers["content-security-policy"] = POLICY
                await send(message)
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            held.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(held)
            MutableHeaders(scope=start)["content-security-policy"] = inline_policy(body)
            await send(start)
            await send({"type": "http.response.body", "body": body, "more_body": False})

        await self.app(scope, receive, send_with_headers)
