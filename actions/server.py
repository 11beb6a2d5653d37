"""`python -m actions.server`: the action server (rasa-sdk's app, these actions) behind a shared secret.

rasa-sdk has no authentication of its own. Rasa sends ACTION_SERVER_TOKEN as `?token=` (the `token` of its
`action_endpoint`, written by `bot.pipeline.supervisor`); any other call but `/health` gets 401. Failures answer
without the request body rasa-sdk would echo (the whole tracker), and log their type only.
"""

from __future__ import annotations

import argparse
import hmac
import logging
import sys
from urllib.parse import urlsplit

from rasa_sdk.endpoint import create_app
from rasa_sdk.executor import ActionExecutor
from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.settings import get_settings
from bot.understanding import logs

TOKEN_NAME = "token"
OPEN = frozenset({"/health"})  # the gateway's health check

log = logging.getLogger(__name__)


def build_app(token: str, package: str = "actions") -> Sanic:
    """rasa-sdk's app for `package`, answering only calls that carry `token`."""
    if not token:
        raise ValueError("the action server needs ACTION_SERVER_TOKEN")
    expected = token.encode()
    executor = ActionExecutor()
    executor.register_package(package)
    app = create_app(executor, cors_origins=None)  # Rasa calls it, never a browser

    @app.on_request
    async def require_token(request: Request) -> HTTPResponse | None:
        """401 unless the call carries the token (compared in constant time)."""
        if request.path in OPEN:
            return None
        given = (request.args.get(TOKEN_NAME) or "").encode()
        if hmac.compare_digest(given, expected):
            return None
        return response.json({"error": "a valid token is required"}, status=401)

    async def failed(request: Request, exception: Exception) -> HTTPResponse:
        """500 with the error's type only: rasa-sdk's own handler logs the request and echoes its body."""
        log.error("action call failed: %s", logs.reason(exception), exc_info=exception)
        return response.json({"error": type(exception).__name__}, status=500)

    # In place of rasa-sdk's handler for every route (Sanic refuses a second `add` for the same key).
    app.error_handler.cached_handlers[(Exception, None)] = failed
    return app


def main(argv: list[str] | None = None) -> int:
    """Serve the actions on loopback (ACTION_SERVER_URL's host and port unless given)."""
    settings = get_settings()
    url = urlsplit(settings.action_server_url)
    parser = argparse.ArgumentParser(prog="python -m actions.server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=url.hostname or "127.0.0.1")
    parser.add_argument("--port", type=int, default=settings.action_server_port)
    args = parser.parse_args(argv)
    logs.configure(settings.log_level, settings.log_format)
    try:
        app = build_app(settings.action_server_token)
    except ValueError as error:
        print(f"{error} (python -m bot run makes one)", file=sys.stderr)
        return 2
    app.run(host=args.host, port=args.port, single_process=True, access_log=False, motd=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
