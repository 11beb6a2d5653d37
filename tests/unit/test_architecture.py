"""The plan of ARCHITECTURE.md, checked on the code: imports run one way between layers and never in a cycle.

The imports are read with `ast` (every `import`, also inside functions and under TYPE_CHECKING), so the check
needs nothing installed and sees what a reader sees.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Lowest first. A module may import its own layer and the ones below it, never one above.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("bot.settings", "bot.i18n", "bot.db", "bot.models")),
    ("understanding and knowledge", ("bot.understanding", "bot.knowledge")),
    ("services", ("bot.services",)),
    ("pipeline", ("bot.pipeline",)),
    ("entry points", ("bot.channels", "bot.inbox", "actions", "nlu")),
    ("wiring", ("bot.app", "bot.cli", "bot.__main__")),
]
# Entry points side by side that stay apart: a channel, the inbox and the Rasa actions each call the layers below.
SEPARATE = ("bot.channels", "bot.inbox", "actions", "nlu")
# Rasa actions run in the action server: they call services, never the gateway's pipeline. The NLU components run
# inside Rasa (its own Python): text rules only, nothing that needs the application's packages or database.
FORBIDDEN = {"actions": ("bot.pipeline",), "nlu": ("bot.pipeline", "bot.services", "bot.knowledge", "bot.db")}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    """Every module of the application and the actions (the migration scripts are Alembic's, not ours)."""
    found = {}
    for folder in ("bot", "actions", "nlu"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "migrations" not in path.parts:
                found[module_name(path)] = path
    return found


def imports_of(path: Path, name: str, known: Iterable[str]) -> set[str]:
    """The project's modules that `path` (module `name`) imports."""
    known = set(known)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    [*package.split(".")[: len(package.split(".")) - node.level + 1], *filter(None, [base])]
                )
            # `from bot.services import handoff` imports the module bot.services.handoff
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports_of(path, name, found) for name, path in found.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return groups


def owner(name: str, prefixes: Iterable[str]) -> str | None:
    return next((p for p in prefixes if name == p or name.startswith(p + ".")), None)


def layer_of(name: str) -> int | None:
    for rank, (_, prefixes) in enumerate(LAYERS):
        if owner(name, prefixes):
            return rank
    return None


def violations(edges: dict[str, set[str]]) -> list[str]:
    """Every import that goes up a layer, joins two separate entry points or reaches a forbidden layer."""
    found = []
    for source, targets in sorted(edges.items()):
        for target in sorted(targets):
            here, there = layer_of(source), layer_of(target)
            if here is not None and there is not None and there > here:
                found.append(f"{source} ({LAYERS[here][0]}) imports {target} ({LAYERS[there][0]}), a layer above")
            mine, theirs = owner(source, SEPARATE), owner(target, SEPARATE)
            if mine and theirs and mine != theirs:
                found.append(f"{source} imports {target}: {mine} and {theirs} stay apart")
            for banned in FORBIDDEN.get(owner(source, FORBIDDEN) or "", ()):
                if owner(target, (banned,)):
                    found.append(f"{source} imports {target}: {owner(source, FORBIDDEN)} must not use {banned}")
    return found


def test_every_module_has_a_layer() -> None:
    unplaced = [name for name in modules() if name not in ("bot", "actions") and layer_of(name) is None]
    assert unplaced == [], f"put these in a layer of ARCHITECTURE.md (and LAYERS here): {unplaced}"


def test_no_import_cycle() -> None:
    assert cycles(graph()) == []


def test_imports_run_one_way() -> None:
    assert violations(graph()) == []


def test_few_modules_loose_at_the_top_of_bot() -> None:
    loose = sorted(p.name for p in (ROOT / "bot").glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert len(loose) <= 6, loose


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"b"}, "b": set(), "c": {"b"}}, []),
        ({"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c"}}, [["a", "b"], ["c", "d"]]),
    ],
)
def test_the_cycle_finder_finds_cycles(edges: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert sorted(cycles(edges)) == expected


def test_the_layer_check_sees_an_upward_import() -> None:
    edges = {"bot.services.handoff": {"bot.inbox.queries", "bot.models"}, "actions.x": {"bot.pipeline.dialogue"}}
    assert violations(edges) == [
        "actions.x imports bot.pipeline.dialogue: actions must not use bot.pipeline",
        "bot.services.handoff (services) imports bot.inbox.queries (entry points), a layer above",
    ]


def test_imports_are_read_as_python_resolves_them(tmp_path: Path) -> None:
    known = {"bot.services", "bot.services.handoff", "bot.models", "bot.inbox.queries"}
    source = tmp_path / "m.py"
    source.write_text(
        "from bot.services import handoff\nfrom bot.models import User\n"
        "def f():\n    from bot.inbox.queries import queue\n"
    )
    assert imports_of(source, "bot.services.other", known) == {
        "bot.services.handoff",
        "bot.models",
        "bot.inbox.queries",
    }
