"""GET /metrics: the Prometheus text format of bot.pipeline.metrics, for the monitoring and for staff.

Who may read it:
- a request from a network of METRICS_ALLOWED (the local networks by default), the address being the real one:
  X-Forwarded-For is read only from TRUSTED_PROXIES (bot.pipeline.ratelimit.client_address), and a request that
  says it was forwarded while no proxy is trusted does not count as local (a reverse proxy on the same host
  would otherwise make everyone local);
- anyone else with a coordinator's or an admin's API token (`Authorization: Bearer nt_...`) or signed-in session.
Otherwise 401 for a token or session that is not valid, 403 for everything else (no credentials from outside,
a caseworker's). Counts and ages only, nothing about anybody; not in any OpenAPI schema.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.security import HTTPAuthorizationCredentials

from bot.db import unit_of_work
from bot.inbox.auth import COOKIE, bearer
from bot.models import Account, Role
from bot.pipeline import metrics, ratelimit
from bot.pipeline.state import GatewayDep
from bot.services import accounts
from bot.settings import Settings

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # the text exposition format (prometheus_client's)
READERS = (Role.COORDINATOR, Role.ADMIN)  # who runs the service; a caseworker answers young people
FORWARDING = ("x-forwarded-for", "forwarded", "x-real-ip")

router = APIRouter(include_in_schema=False)


def from_allowed_network(request: Request, settings: Settings) -> bool:
    """Whether the request really comes from a network of METRICS_ALLOWED."""
    peer = request.client.host if request.client else ""
    if not settings.proxies and any(request.headers.get(header) for header in FORWARDING):
        return False  # forwarded by a proxy we were not told to believe: who is behind it is unknown
    address = ratelimit.client_address(peer, request.headers.get("x-forwarded-for"), settings.proxies)
    return within(address, settings.metrics_networks)


def within(address: str, networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    """Whether `address` is in one of `networks` (an IPv4 address written as IPv6, ::ffff:a.b.c.d, as IPv4)."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False  # no address at all (a test transport) or garbage: not a network of ours
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    return any(parsed in network for network in networks)


def reader(
    request: Request,
    gateway: GatewayDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Let the request through if it comes from an allowed network or from a coordinator or an admin."""
    if from_allowed_network(request, gateway.settings):
        return
    cookie = request.cookies.get(COOKIE)
    if credentials is None and not cookie:
        raise HTTPException(status_code=403, detail="not from an allowed network: use a coordinator's token")
    with unit_of_work(gateway.sessions) as session:
        account: Account | None = None
        if credentials is not None:
            account = accounts.account_for_token(session, credentials.credentials)
        elif (signed := accounts.session_for(session, cookie)) is not None:
            account = signed.account
        role = account.role if account is not None else None
    if role is None:
        raise HTTPException(
            status_code=401,
            detail="a valid bearer token or session is required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if role not in READERS:
        raise HTTPException(status_code=403, detail="for coordinators and admins")


@router.get("/metrics", dependencies=[Depends(reader)])
def scrape(gateway: GatewayDep) -> Response:
    """This gateway's counters and the database's figures, in the Prometheus text format."""
    # A plain def: FastAPI runs it in its thread pool, so the database read never blocks the event loop.
    return Response(metrics.exposition(gateway.sessions), media_type=CONTENT_TYPE)
