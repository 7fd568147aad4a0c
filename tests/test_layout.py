"""The house's shape: no import cycle, between modules or between folders (a folder's
modules import only folders and modules that do not import it back), read from the source
as the workflow's provenance reads it (imports inside functions count)."""

from __future__ import annotations

from certsmooth import provenance


def _modules() -> dict[str, bool]:
    """Every library module, and whether it is a package's ``__init__``."""
    out = {}
    for f in provenance.ROOT.rglob("*.py"):
        parts = list(f.relative_to(provenance.ROOT.parent).with_suffix("").parts)
        package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if package else parts)] = package
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _graph(node) -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for m, package in modules.items():
        for dep in provenance._imports(provenance._parsed(m), m, package):
            if dep in modules and node(dep) != node(m):
                graph.setdefault(node(m), set()).add(node(dep))
    return graph


def test_no_import_cycle_between_modules():
    assert _cycles(_graph(lambda m: m)) == []


def test_no_import_cycle_between_folders():
    """A node is a sub-package (``certsmooth.certificates``, ``certsmooth.data``, ...) or a
    top-level module (``certsmooth.config``, ``certsmooth.errors``, ...)."""
    modules = _modules()

    def folder(m: str) -> str:
        parts = m.split(".")
        return ".".join(parts[:2]) if len(parts) > 2 or (len(parts) == 2 and modules[m]) else m

    assert _cycles(_graph(folder)) == []


def test_the_cycle_check_sees_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_config_and_the_cells_name_no_kind():
    """A kind of certifier or attack is known to its record only: the params' loader and the
    cells name none (a new certifier adds a record, not a branch here)."""
    import re

    from certsmooth.attacks.kinds import ATTACKS
    from certsmooth.certifiers import CERTIFIERS

    names = [*CERTIFIERS, *(k for k in ATTACKS if k != "none"), "ensemble", "cohen", "count", "sigma_opt", "bilevel"]
    for module in ("config", "experiment"):
        code = (provenance.ROOT / f"{module}.py").read_text()
        strings = re.findall(r"[\"']([a-z_]+)[\"']", code)
        assert not set(strings) & set(names), (module, sorted(set(strings) & set(names)))
