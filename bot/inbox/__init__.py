"""The caseworker inbox: web pages under /inbox/ and a JSON API under /inbox/api/, behind the same permissions."""

from bot.inbox import api, pages

__all__ = ["api", "pages"]
