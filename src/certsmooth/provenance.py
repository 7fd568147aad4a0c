"""Which library files a workflow step runs: the import closure of its command.

Every rule calls ``python -m certsmooth <command>`` and declares, as inputs, the library
files that command imports, so an edit of a module reruns exactly the jobs that run it.
The files are derived here from the source with :mod:`ast` (no module is imported, so
parsing the workflow imports no torch):

* the command's step module (one per command: ``certsmooth.steps``) and ``cli.py``'s own imports (but the
  benchmarks' passthrough);
* then every ``certsmooth`` module those import, at any depth, counting imports inside
  functions too (a superset of what one run executes: never too few), plus the package
  ``__init__.py`` files on the way.

``tests/test_provenance.py`` checks the closure against the modules each job of the test
workflows really loaded (``CERTSMOOTH_IMPORT_TRACE``, written by ``certsmooth.__main__``).
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

PACKAGE = "certsmooth"
ROOT = Path(__file__).resolve().parent  # src/certsmooth
NOT_A_STEP = ("_bench",)  # the functions of cli.py no workflow command runs (the benchmarks' passthrough)


def module_file(module: str) -> Path | None:
    """The source file of a ``certsmooth`` module or package, or None if there is none."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = ROOT.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """``certsmooth`` modules imported anywhere in ``tree`` (``from a import b`` counts
    ``a.b`` when b is a module; a package that lists its own modules with
    ``pkgutil.iter_modules``, a registry, imports every one of them)."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if is_package and isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "iter_modules":
            out |= {f"{module}.{f.stem}" for f in module_file(module).parent.glob("*.py") if f.stem != "__init__"}
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == PACKAGE}
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(node, module, is_package)
            if target.split(".")[0] != PACKAGE:
                continue
            out.add(target)
            out |= {f"{target}.{a.name}" for a in node.names if module_file(f"{target}.{a.name}") is not None}
    return {m for m in out if module_file(m) is not None}


@functools.cache
def _parsed(module: str) -> ast.Module:
    return ast.parse(module_file(module).read_text(), filename=str(module_file(module)))


def _with_parents(module: str) -> set[str]:
    parts = module.split(".")
    return {".".join(parts[: i + 1]) for i in range(len(parts))}


def closure(modules) -> set[str]:
    """``modules`` and every ``certsmooth`` module they import, transitively, with their
    parent packages. ``cli.py`` is counted but not followed: :func:`command_modules` takes
    the parts of it a command runs."""
    todo = [m for start in modules for m in _with_parents(start)]
    seen: set[str] = {f"{PACKAGE}.cli"}
    while todo:
        mod = todo.pop()
        if mod in seen or module_file(mod) is None:
            continue
        seen.add(mod)
        is_pkg = module_file(mod).name == "__init__.py"
        for dep in _imports(_parsed(mod), mod, is_pkg):
            todo += sorted(_with_parents(dep) - seen)
    return seen


def commands() -> dict[str, str]:
    """``certsmooth`` command name -> the module of its step: every module of
    ``certsmooth.steps`` (``step_name`` is the command ``step-name``)."""
    steps = sorted(f.stem for f in (ROOT / "steps").glob("[!_]*.py"))
    return {s.replace("_", "-"): f"{PACKAGE}.steps.{s}" for s in steps}


def command_modules(command: str) -> set[str]:
    """Every library module that ``python -m certsmooth <command>`` can import: cli.py's own
    imports (but the benchmarks' passthrough, ``_bench``), the command's step module, and
    their closures."""
    steps = commands()
    if command not in steps:
        raise KeyError(f"unknown certsmooth command {command!r}; commands: {', '.join(sorted(steps))}")
    cli = _parsed(f"{PACKAGE}.cli")
    own = ast.Module(body=[n for n in cli.body if not (isinstance(n, ast.FunctionDef) and n.name in NOT_A_STEP)],
                     type_ignores=[])  # fmt: skip
    start = {f"{PACKAGE}", f"{PACKAGE}.__main__", steps[command]} | _imports(own, f"{PACKAGE}.cli", False)
    return closure(start) | {f"{PACKAGE}.cli"}


def command_files(command: str, relative_to: Path | None = None) -> list[str]:
    """The source files of :func:`command_modules`, sorted, as paths relative to
    ``relative_to`` (default: absolute)."""
    files = sorted(module_file(m) for m in command_modules(command))
    return [str(f.relative_to(relative_to) if relative_to else f) for f in files]
