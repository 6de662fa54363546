"""Layers only point down: no module of moviegraph imports a package above its own.

Every ``import`` / ``from ... import`` of every module is read with ``ast`` (imports
inside functions and under ``TYPE_CHECKING`` included), so a lazy import cannot hide an
upward dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from moviegraph.config import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "lib" / "moviegraph"

#: Bottom to top. A module may import its own unit and any unit of a lower (or the same)
#: rank; units sharing a rank do not depend on a higher one either.
LAYERS: list[tuple[str, ...]] = [
    ("config",),
    ("errors", "numba_cache"),  # numba_cache: stdlib and numba only, under the kernels
    ("tables", "deltalog", "fs", "faults", "vectors"),
    ("runs", "lock"),
    ("protocol",),
    ("session", "jvm", "sparkargs", "cds"),  # infrastructure: the Spark session, its jars
    ("sources",),
    ("graph",),
    ("walks",),
    ("train",),
    ("similarity",),
    ("evaluate",),
    ("export",),
    ("maintain",),  # Delta upkeep of every table: above all their writers
    ("stages",),
    ("pipeline",),
    ("cli",),
    ("submit", "package", "__main__"),
]
RANK = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def unit_of(module: str) -> str | None:
    """``moviegraph.train.mf`` -> ``train``; None outside the package (or the package
    itself)."""
    parts = module.split(".")
    return parts[1] if parts[0] == "moviegraph" and len(parts) > 1 else None


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_units(path: Path, source: str | None = None) -> list[tuple[int, str]]:
    """``(line, unit)`` of every moviegraph unit the module at ``path`` imports (its text,
    or ``source``)."""
    tree = ast.parse(path.read_text() if source is None else source, str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = module_name(path).split(".")
                if path.name != "__init__.py":
                    base = base[:-1]
                base = base[: len(base) - node.level + 1]
                names = [".".join([*base, node.module or ""]).rstrip(".")]
            else:
                names = [node.module or ""]
            # ``from moviegraph import config``: the names are units themselves.
            if names == ["moviegraph"]:
                names = [f"moviegraph.{a.name}" for a in node.names]
        else:
            continue
        out += [(node.lineno, u) for n in names if (u := unit_of(n)) is not None]
    return out


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_unit_has_a_layer():
    units = {unit_of(module_name(p)) for p in MODULES} - {None}
    assert units <= set(RANK), f"no layer for {sorted(units - set(RANK))}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path: Path):
    own = unit_of(module_name(path))
    if own is None:
        return
    upward = [f"line {line}: imports moviegraph.{unit} (layer {RANK[unit]} > {own}'s "
              f"{RANK[own]})" for line, unit in imported_units(path)
              if unit != own and RANK.get(unit, -1) > RANK[own]]
    assert not upward, f"{path.relative_to(PACKAGE)}: " + "; ".join(upward)


def test_the_checker_sees_every_kind_of_import():
    probe = PACKAGE / "graph" / "probe.py"
    source = ("import moviegraph.walks.csr\n"
              "from moviegraph import train as t\n"
              "from ..evaluate import scoring\n"
              "def f():\n    from moviegraph.stages.walks import run_walks\n")
    assert imported_units(probe, source) == [(1, "walks"), (2, "train"), (3, "evaluate"),
                                             (5, "stages")]
