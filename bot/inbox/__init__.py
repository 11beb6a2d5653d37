"""The caseworker inbox: web pages under /inbox/ and a JSON API under /inbox/api/, behind the same permissions
(conversations and handoff in pages and api, the nudges' views and switches in nudges).

`install` puts both on an application, with the API's one answer to a move the handoff rules refuse (409), and
the security headers of bot.inbox.headers on every response of the application (the web chat's too). The
inbox reads the gateway's state through bot.pipeline.state, which the application must have installed.
"""

from fastapi import FastAPI

from bot.inbox import api, dashboard, exports, headers, metrics, nudges, pages, path
from bot.services.handoff import HandoffError

__all__ = ["api", "dashboard", "headers", "install", "metrics", "nudges", "pages", "path"]


def install(app: FastAPI) -> None:
    """The inbox's pages and API on `app`; a refused move that reaches the app is answered 409 (the API's);
    the security headers on every response of `app`."""
    app.include_router(pages.router)
    app.include_router(api.router)
    app.include_router(exports.router)
    app.include_router(nudges.pages)
    app.include_router(nudges.api)
    app.include_router(path.router)  # a young person's path: the conversation page's panel
    app.include_router(dashboard.router)  # the programme's figures: coordinators, and caseworkers for their own
    app.include_router(metrics.router)  # /metrics: allowed networks, coordinators and admins
    app.add_exception_handler(HandoffError, api.refused)
    app.add_middleware(headers.SecurityHeaders)
