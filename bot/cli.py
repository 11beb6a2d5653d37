"""The command line: `python -m bot <command>`, with --help on every command."""

from __future__ import annotations

import argparse
import logging
from datetime import UTC, datetime
from typing import Any

from bot.settings import get_settings


def cmd_run(args: argparse.Namespace) -> int:
    from bot.pipeline import supervisor

    return supervisor.run(get_settings(), ready_timeout=args.ready_timeout, verbose=args.verbose)


def cmd_role(args: argparse.Namespace) -> int:
    """Rasa or the action server alone, in the foreground (one container, one replica)."""
    import os
    import sys

    from bot.pipeline import supervisor

    settings = get_settings()
    missing = [name.upper() for name in supervisor.TOKENS if not getattr(settings, name)]
    if missing:
        print(
            f"{' and '.join(missing)} must be set, the same for every process: a part started alone cannot share"
            " a secret made up at start (`python -m bot run` makes them for you).",
            file=sys.stderr,
        )
        return 2
    if args.command == "rasa" and not (supervisor.RASA_BIN.exists() and settings.rasa_model.exists()):
        print("The Rasa environment or model is missing: run `make setup` first.", file=sys.stderr)
        return 2
    default_port = settings.rasa_port if args.command == "rasa" else settings.action_server_port
    process = supervisor.role(settings, args.command, args.host, args.port or default_port)
    os.chdir(supervisor.ROOT)
    os.execvpe(process.command[0], process.command, process.env)  # signals reach it directly


def cmd_gateway(args: argparse.Namespace) -> int:
    import uvicorn

    from bot.app import create_app

    settings = get_settings()
    uvicorn.run(
        create_app(settings),
        host=settings.bot_host,
        port=settings.bot_port,
        log_level=settings.log_level.lower(),
        log_config=None,  # our handler (bot.logs), so access lines go through its filter and formatter
        proxy_headers=False,  # TRUSTED_PROXIES alone decides whose X-Forwarded-For is believed (bot.pipeline.ratelimit)
    )
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    logging.getLogger("alembic").setLevel(logging.WARNING)  # quiet unless something is wrong
    from bot.db import upgrade

    upgrade(get_settings().database_url, args.revision)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Check that every text exists in every language."""
    from bot.i18n import catalog

    missing = catalog().missing()
    for language, keys in sorted(missing.items()):
        print(f"{language}: missing {', '.join(sorted(keys))}")
    return 1 if missing else 0


def cmd_knowledge(args: argparse.Namespace) -> int:
    """Check the knowledge files; list the facts still to confirm."""
    from bot.knowledge import KnowledgeError, load_knowledge
    from bot.knowledge.agendas import load_agendas
    from bot.knowledge.nudges import load_campaigns

    folder = get_settings().knowledge_dir
    try:
        known = load_knowledge(folder)
        agendas = load_agendas(folder, known, get_settings().timezone)
        campaigns = load_campaigns(folder)
    except KnowledgeError as error:
        print(f"The knowledge files in {folder} have problems:\n{error}")
        return 1
    print(
        f"{folder}: {len(known.communes)} communes, {len(known.partners)} partners, {len(known.topics)} Actiris topics,"
        f" {len(agendas.by_organisation)} agendas, {len(campaigns.by_id)} nudge campaigns"
    )
    to_check = known.to_check() + agendas.to_check()
    if to_check:
        print(f"{len(to_check)} entries with facts to confirm (field: note):")
        print("\n".join(f"  {line}" for line in to_check))
    return 0


def _new_password(email: str) -> str:
    """A new password: typed twice at a terminal (not echoed), or the first line of stdin when piped."""
    import getpass
    import sys

    from bot.services import accounts

    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass(f"New password for {email}: ")
    if getpass.getpass("Again: ") != first:
        raise accounts.AccountError("the two passwords differ: nothing changed")
    return first


def cmd_accounts(args: argparse.Namespace) -> int:
    """Organisations, inbox accounts and API tokens."""
    import sys

    from bot.db import make_engine, make_session_factory, unit_of_work
    from bot.models import Role, TokenScope
    from bot.services import accounts

    engine = make_engine(get_settings().database_url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            if args.action == "create-org":
                organisation = accounts.create_organisation(session, args.name, args.key)
                print(f"organisation {organisation.name!r} created (key {organisation.key})")
            elif args.action == "create":
                password = sys.stdin.readline().rstrip("\n") if args.password == "-" else args.password
                org = accounts.organisation_named(session, args.org) if args.org else None
                account = accounts.create_account(session, args.email, password, Role(args.role), org, args.name)
                where = f" of {org.name}" if org else ""
                print(f"{account.role.value} account {account.email}{where} created")
            elif args.action == "token":
                holder = accounts.account_named(session, args.email)
                print(accounts.create_token(session, holder, scope=TokenScope(args.scope), days=args.days))
                print(f"({args.scope} token of {holder.email}, valid {args.days} days)", file=sys.stderr)
            elif args.action == "disable":
                accounts.disable(session, accounts.account_named(session, args.email))
                print(f"{args.email} disabled: signed out everywhere, no sign-in, no API token")
            elif args.action == "enable":
                accounts.enable(session, accounts.account_named(session, args.email))
                print(f"{args.email} enabled")
            elif args.action == "revoke":
                tokens, ended = accounts.revoke(session, accounts.account_named(session, args.email))
                print(f"{args.email}: {tokens} API token(s) revoked, {ended} session(s) ended")
            elif args.action == "passwd":
                holder = accounts.account_named(session, args.email)  # before asking: no typing for nothing
                ended = accounts.set_password(session, holder, _new_password(holder.email))
                print(f"{args.email}: password changed, {ended} session(s) ended")
    except accounts.AccountError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    return 0


def _nudge_stats(session: Any) -> None:
    from bot.inbox import queries

    print(
        f"{'campaign/step':<28}{'planned':>8}{'sent':>6}{'deliv.':>7}{'read':>6}{'answ.':>6}{'skipped':>8}{'cancel.':>8}"
    )
    for line in queries.figures(session):
        name = f"{line.campaign}/{line.step}"
        answers = ", ".join(f"{key} {count}" for key, count in sorted(line.answers.items()))
        counts = f"{line.planned:>8}{line.sent:>6}{line.delivered:>7}{line.read:>6}{line.answered:>6}"
        print(f"{name:<28}{counts}{line.skipped:>8}{line.cancelled:>8}  {answers}")
    print(f"stopped topics: {queries.opt_outs(session) or 'none'}")
    print(f"blocked us: {queries.blocked(session) or 'none'}")


def _nudge_preview(session: Any, campaigns: Any, at: datetime, campaign: str | None) -> None:
    from bot.services import nudge_sending

    zone = campaigns.zone
    planned = nudge_sending.preview(session, at, campaigns, campaign)
    for row, decision in planned:
        until = f" until {decision.until.astimezone(zone):%Y-%m-%d %H:%M}" if decision.until else ""
        why = f": {decision.reason}" if decision.reason else ""
        due = f"{row.due_at.astimezone(zone):%Y-%m-%d %H:%M}"
        print(f"{due}  {row.user.public_id[:8]}  {row.campaign}/{row.step}  {decision.action}{until}{why}")
    sending = sum(1 for _, decision in planned if decision.action == "send")
    print(f"{len(planned)} due by {at.astimezone(zone):%Y-%m-%d %H:%M}, {sending} would be sent")


def cmd_nudges(args: argparse.Namespace) -> int:
    """Preview what the nudges would do, or their figures; nothing is sent."""
    from bot.db import make_engine, make_session_factory, unit_of_work
    from bot.knowledge import KnowledgeError
    from bot.knowledge.nudges import load_campaigns

    settings = get_settings()
    try:
        campaigns = load_campaigns(settings.knowledge_dir, timezone=settings.timezone)
    except KnowledgeError as error:
        print(f"nudges.yml has problems:\n{error}")
        return 1
    if args.action == "preview" and args.campaign and campaigns.get(args.campaign) is None:
        print(f"no campaign {args.campaign!r} in nudges.yml (there are: {', '.join(campaigns.by_id)})")
        return 2
    try:
        at = datetime.fromisoformat(args.at) if getattr(args, "at", None) else datetime.now(UTC)
    except ValueError:
        print(f"--at {args.at!r}: expected an ISO date and time such as 2026-12-07T10:00")
        return 2
    at = at if at.tzinfo else at.replace(tzinfo=campaigns.zone)
    engine = make_engine(settings.database_url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            if args.action == "stats":
                _nudge_stats(session)
            else:
                _nudge_preview(session, campaigns, at, args.campaign)
    finally:
        engine.dispose()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="The Brussels youth employment assistant.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="<command>")

    run = commands.add_parser(
        "run",
        help="start Rasa, the action server and the gateway; Ctrl-C stops them all",
        description="Start Rasa, the action server and the gateway (set-up: `make run`).",
    )
    run.add_argument("--ready-timeout", type=float, default=300.0, help="seconds to wait for /healthz (300)")
    run.add_argument("--verbose", action="store_true", help="show every line of every part, not only the errors")
    run.set_defaults(func=cmd_run)

    for name, what in (("rasa", "Rasa (RASA_URL's port)"), ("actions", "the action server (ACTION_SERVER_URL's port)")):
        part = commands.add_parser(
            name,
            help=f"start only {what}, in the foreground",
            description=f"Start only {what}: one replica, as a container runs it. RASA_AUTH_TOKEN and"
            " ACTION_SERVER_TOKEN must be set.",
        )
        part.add_argument(
            "--host", default="127.0.0.1", help="address to listen on (127.0.0.1; 0.0.0.0 in a container)"
        )
        part.add_argument("--port", type=int, help="port to listen on (default: from the URL)")
        part.set_defaults(func=cmd_role)

    gateway = commands.add_parser(
        "gateway",
        help="start only the gateway (web chat, webhooks, Telegram)",
        description="Serve the gateway on BOT_HOST:BOT_PORT.",
    )
    gateway.set_defaults(func=cmd_gateway)

    migrate = commands.add_parser(
        "migrate",
        help="bring the database schema up to date",
        description="Apply the Alembic migrations to DATABASE_URL.",
    )
    migrate.add_argument("revision", nargs="?", default="head", help="target revision (head)")
    migrate.set_defaults(func=cmd_migrate)

    check = commands.add_parser(
        "check-texts",
        help="list texts missing in some language",
        description="Exit 1 when a text key is missing in one of the five languages.",
    )
    check.set_defaults(func=cmd_check)

    knowledge = commands.add_parser(
        "knowledge",
        help="check the knowledge files and list the facts still to confirm",
        description="Exit 1 when a file of KNOWLEDGE_DIR breaks the schema; the message names file, entry and field.",
    )
    knowledge.set_defaults(func=cmd_knowledge)

    accounts = commands.add_parser(
        "accounts",
        help="create organisations and inbox accounts, issue API tokens",
        description="Manage who may use the caseworker inbox (/inbox/) and its API (/inbox/api/).",
    )
    actions = accounts.add_subparsers(dest="action", required=True, metavar="<action>")
    org = actions.add_parser(
        "create-org",
        help="create an organisation (a team that answers in the inbox)",
        description="Create an organisation. Its key routes conversations to it: give a partner's id of"
        " knowledge/partners.yml so that young people who chose that partner reach its team.",
    )
    org.add_argument("name", metavar="NAME", help="the organisation's name, e.g. 'JES Brussel'")
    org.add_argument("--key", help="routing key: a partner id of knowledge/partners.yml (default: from NAME)")
    create = actions.add_parser(
        "create",
        help="create an account",
        description="Create an inbox account. Coordinators see every organisation, caseworkers their own, admins"
        " manage accounts.",
    )
    create.add_argument("--email", required=True)
    create.add_argument("--password", required=True, help="at least 12 characters; '-' reads it from stdin")
    create.add_argument("--role", required=True, choices=["coordinator", "caseworker", "admin"])
    create.add_argument("--org", help="the organisation's name or key (required for caseworkers)")
    create.add_argument("--name", help="the name young people and colleagues see (default: from the email)")
    token = actions.add_parser(
        "token",
        help="print a new API token for an account",
        description="Print a new bearer token for /inbox/api/ (shown once; only its hash is kept). A read token"
        " lists and reads conversations; a write token also assigns, answers, transfers, resolves and adds notes.",
    )
    token.add_argument("--email", required=True)
    token.add_argument("--scope", choices=["read", "write"], default="read", help="what it may do (read)")
    token.add_argument("--days", type=int, default=90, help="how long it is valid, 1 to 366 days (90)")
    for name, says in (
        ("disable", "disable an account: signed out everywhere, no sign-in, its API tokens refused"),
        ("enable", "enable a disabled account again"),
        ("revoke", "revoke every API token of an account and end all its sessions"),
        ("passwd", "set a new password (typed twice, or one line on stdin); ends all its sessions"),
    ):
        action = actions.add_parser(name, help=says, description=says[0].upper() + says[1:] + ".")
        action.add_argument("email", metavar="EMAIL")
    accounts.set_defaults(func=cmd_accounts)

    nudges = commands.add_parser(
        "nudges",
        help="preview what the nudges would do, or their figures (nothing is sent)",
        description="The messages the assistant sends first (knowledge/nudges.yml): who would get what, when, and"
        " why not; or per campaign and step what became of them.",
    )
    nudge_actions = nudges.add_subparsers(dest="action", required=True, metavar="<action>")
    preview = nudge_actions.add_parser(
        "preview",
        help="the nudges due by a moment and what would happen to each (send, wait, skip, cancel) and why",
        description="Nothing is sent or changed.",
    )
    preview.add_argument("campaign", nargs="?", help="one campaign id of nudges.yml (default: all)")
    preview.add_argument("--at", help="ISO date and time, Brussels time unless a zone is given (default: now)")
    nudge_actions.add_parser("stats", help="planned, sent, delivered, read, answered, skipped, per campaign and step")
    nudges.set_defaults(func=cmd_nudges)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from bot.understanding import logs

    logs.configure(get_settings().log_level, get_settings().log_format)
    return int(args.func(args))
