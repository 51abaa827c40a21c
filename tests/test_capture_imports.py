"""No import circles through capture/, kernel/, pipeline or cli/ (docs/architecture.md).

Every import of the package is counted, also one inside a function (the circle
between the capture reader and the format readers was such an import), and the
strongly connected parts of the graph must be single modules wherever one of
these layers is involved.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "tcpscope"
CHECKED = ("tcpscope.capture", "tcpscope.kernel", "tcpscope.pipeline", "tcpscope.cli")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str) -> bool:
    """A Python module or package of tcpscope, or a native one (built from NAME.c)."""
    base = PACKAGE.parent.joinpath(*name.split("."))
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists() or \
        base.with_suffix(".c").exists()


def imports_of(path: Path) -> set[str]:
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("tcpscope"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if not module.startswith("tcpscope"):
                continue
            subs = [f"{module}.{a.name}" for a in node.names if is_module(f"{module}.{a.name}")]
            out.update(subs or [module])
            if len(subs) < len(node.names):
                out.add(module)
    return {m for m in out if is_module(m) and m != name}


def cycles() -> list[set[str]]:
    """The strongly connected parts of more than one module (Tarjan's algorithm)."""
    graph = {module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py")}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                part.add(w)
                if w == v:
                    break
            if len(part) > 1:
                out.append(part)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_the_imports() -> None:
    assert "tcpscope.capture.pcap" in imports_of(PACKAGE / "capture" / "opener.py")
    assert "tcpscope.capture._scan" in imports_of(PACKAGE / "capture" / "pcap.py")
    assert "tcpscope.pipeline" in imports_of(PACKAGE / "present" / "follow.py")


def test_no_import_circle_through_capture_kernel_pipeline_or_cli() -> None:
    bad = [sorted(c) for c in cycles()
           if any(m == p or m.startswith(p + ".") for m in c for p in CHECKED)]
    assert not bad, f"import circles: {bad}"
