"""The package's shape, read from its imports: one direction, no cycles, small modules.

Domain packages (the backbone, datasets, detection, geo, faces, teachers, classification) and
the foundation modules at the top level never import the training engine, the tasks or the
CLI; the engine never imports the tasks or the CLI; the tasks never import the CLI. Only
``mbv1.tasks`` knows both the domains and the engine. Lazy (function-level) imports count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "mbv1"
UPPER = {"engine", "tasks", "cli"}
# what each layer may not import
FORBIDDEN = {"engine": {"tasks", "cli"}, "tasks": {"cli"}, "cli": set()}
MAX_LINES = 420


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every mbv1 import in a file (``from mbv1 import x`` → mbv1.x)."""
    tree = ast.parse(path.read_text(), str(path))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("mbv1")]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            if not base.startswith("mbv1"):
                continue
            for a in node.names:
                full = f"{base}.{a.name}"
                out.append((node.lineno, full if _exists(full) else base))
    return out


def _exists(module: str) -> bool:
    p = ROOT.parent.joinpath(*module.split("."))
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def _layer(module: str) -> str:
    if module == "mbv1.__main__":  # ``python -m mbv1``: the CLI's entry point
        return "cli"
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in UPPER else "domain"


def _files() -> list[Path]:
    return sorted(ROOT.rglob("*.py"))


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for f in _files():
        mod = _module_name(f)
        graph[mod] = set()
        for _, target in _imports(f):
            while target and not _exists(target):
                target = target.rpartition(".")[0]
            if target and target != mod:
                graph[mod].add(target)
    return graph


def layering_violations() -> list[str]:
    bad = []
    for f in _files():
        src = _layer(_module_name(f))
        forbidden = UPPER if src == "domain" else FORBIDDEN[src]
        for line, target in _imports(f):
            if _layer(target) in forbidden:
                bad.append(f"{f.relative_to(ROOT.parent)}:{line} imports {target}")
    return bad


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), ignoring package
    ``__init__`` modules importing their own submodules (re-exports)."""
    edges = {m: {t for t in ts if not t.startswith(m + ".")} for m, ts in graph.items()}
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_imports_go_one_direction():
    bad = layering_violations()
    if bad:
        pytest.fail("import against the layering (domain < engine < tasks < cli): "
                    + "; ".join(bad), pytrace=False)


def test_no_import_cycles():
    cycles = import_cycles(_graph())
    if cycles:
        pytest.fail("import cycles: " + "; ".join(" <-> ".join(c) for c in cycles), pytrace=False)


# The runtimes (ONNX/TFLite files, quantisation, runners, the parity-checked export cache) sit
# below every domain: they import only foundation modules (top-level files, assets) and
# themselves. The export specs know each domain, so ``mbv1.export`` sits above them: no domain
# imports it (the CLI does).
DOMAINS = {"backbone", "datasets", "classification", "detection", "geo", "faces", "teachers"}


def runtime_violations() -> list[str]:
    bad = []
    for f in _files():
        mod = _module_name(f)
        parts = mod.split(".")
        for line, target in _imports(f):
            tparts = target.split(".")
            sub = tparts[1] if len(tparts) > 1 else ""
            if parts[1:2] == ["runtimes"] and (sub in DOMAINS | UPPER or sub == "export"):
                bad.append(f"{f.relative_to(ROOT.parent)}:{line} (a runtime) imports {target}")
            if parts[1:2] and parts[1] in DOMAINS and sub == "export":
                bad.append(f"{f.relative_to(ROOT.parent)}:{line} (a domain) imports {target}")
    return bad


def test_runtimes_below_domains_export_above():
    bad = runtime_violations()
    if bad:
        pytest.fail("runtimes < domains < export: " + "; ".join(bad), pytrace=False)


def test_teachers_do_not_import_faces():
    bad = [f"{f.relative_to(ROOT.parent)}:{line} imports {t}"
           for f in sorted((ROOT / "teachers").rglob("*.py")) for line, t in _imports(f)
           if t.startswith("mbv1.faces")]
    assert not bad, bad


def test_modules_stay_small():
    big = [f"{f.relative_to(ROOT.parent)} ({n} lines)" for f in _files()
           if (n := len(f.read_text().splitlines())) > MAX_LINES]
    if big:
        pytest.fail(f"modules over {MAX_LINES} lines: " + ", ".join(big), pytrace=False)


def test_the_checks_catch_what_they_look_for(tmp_path):
    graph = {"mbv1.a": {"mbv1.b"}, "mbv1.b": {"mbv1.c"}, "mbv1.c": {"mbv1.a"}, "mbv1.d": set()}
    assert import_cycles(graph) == [["mbv1.a", "mbv1.b", "mbv1.c"]]
    assert _layer("mbv1.engine.trainer") == "engine" and _layer("mbv1.geo.model") == "domain"
