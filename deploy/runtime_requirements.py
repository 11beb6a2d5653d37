"""Print the part of requirements/app.lock the application runs on, hashes included (for the image).

The lock holds the development tools too (pytest, playwright, mypy, ruff...: about two thirds of its size). The
packages the application needs are those of `[project] dependencies` in pyproject.toml and, transitively, what
they pull in: read from the `# via` lines uv writes under each pinned package. Every block is copied as it is in
the lock, so the install keeps `--require-hashes` and the exact versions `make setup` installs.

    python deploy/runtime_requirements.py requirements/app.lock pyproject.toml > runtime.lock
"""

from __future__ import annotations

import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==")
NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def normalise(name: str) -> str:
    """A package name as PEP 503 compares them (`Foo_Bar` and `foo-bar` are one package)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class Block:
    """One pinned package of the lock: its lines, and the packages it is there for (`# via`)."""

    name: str
    lines: list[str] = field(default_factory=list)
    parents: set[str] = field(default_factory=set)


def parse_lock(text: str) -> dict[str, Block]:
    """The lock's packages by normalised name."""
    blocks: dict[str, Block] = {}
    current: Block | None = None
    in_via = False
    for line in text.splitlines():
        pinned = PIN.match(line)
        if pinned:
            current = blocks.setdefault(normalise(pinned.group(1)), Block(normalise(pinned.group(1))))
            current.lines.append(line)
            in_via = False
            continue
        if current is None:
            continue  # the header
        stripped = line.strip()
        if stripped.startswith("--hash") or (current.lines and current.lines[-1].endswith("\\")):
            current.lines.append(line)
        elif stripped.startswith("# via"):
            parent = stripped.removeprefix("# via").strip()
            in_via = not parent  # "# via" alone: one parent per following line
            if parent:
                current.parents.add(parent)
        elif in_via and stripped.startswith("#   "):
            current.parents.add(stripped.removeprefix("#").strip())
        else:
            in_via = False
    for block in blocks.values():  # "neet-assistant (pyproject.toml)", "-r requirements.in": not packages
        block.parents = {normalise(parent) for parent in block.parents if " " not in parent and "/" not in parent}
    return blocks


def direct_dependencies(pyproject: str) -> set[str]:
    """The names of `[project] dependencies` (extras and versions dropped)."""
    dependencies = tomllib.loads(pyproject)["project"]["dependencies"]
    names = set()
    for requirement in dependencies:
        found = NAME.match(requirement)
        if not found:
            raise ValueError(f"cannot read the dependency {requirement!r} of pyproject.toml")
        names.add(normalise(found.group(1)))
    return names


def runtime_packages(blocks: dict[str, Block], direct: set[str]) -> set[str]:
    """The direct dependencies and everything the lock says they pull in."""
    missing = direct - blocks.keys()
    if missing:
        raise ValueError(f"not in the lock: {', '.join(sorted(missing))} (run `make lock`)")
    children: dict[str, set[str]] = {}
    for block in blocks.values():
        for parent in block.parents:
            children.setdefault(parent, set()).add(block.name)
    needed: set[str] = set()
    waiting = list(direct)
    while waiting:
        name = waiting.pop()
        if name not in needed:
            needed.add(name)
            waiting.extend(children.get(name, ()))
    return needed


def runtime_lock(lock: str, pyproject: str) -> str:
    """The lock's blocks of the runtime packages, in the lock's order."""
    blocks = parse_lock(lock)
    needed = runtime_packages(blocks, direct_dependencies(pyproject))
    kept = [line for name, block in blocks.items() if name in needed for line in block.lines]
    header = "# The runtime part of requirements/app.lock (deploy/runtime_requirements.py): the same pins and hashes."
    return "\n".join([header, *kept]) + "\n"


def main(argv: list[str]) -> int:
    """Print the runtime lock of the lock and pyproject.toml given."""
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    lock, pyproject = (Path(argument).read_text(encoding="utf-8") for argument in argv)
    try:
        sys.stdout.write(runtime_lock(lock, pyproject))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
