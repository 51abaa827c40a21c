"""scripts/setup installs every external program the code runs.

The source is scanned (Python's syntax tree, not text) for the programs it
executes: the first word of a command list given to ``subprocess`` or to the
project's run helpers (``run``, ``cmd``, ``sh``...), or given word by word to a
helper that takes ``*cmd`` (``run("ip", ...)``, ``lab.sh(ns, "nft", ...)``), of
a list assigned to a ``cmd`` / ``argv`` / ``*_CMD`` name or returned by a
``command`` property, the program after ``ip netns exec NS`` and ``nsenter
--net=...``, and the names looked up with ``shutil.which`` / ``require_tool``. Each must have a row in the
table of scripts/setup (program, Debian package, tier), and each row must still
be needed. A program the set-up does not install (tier ``none``) must say why.
"""
from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

from tcpscope.cli.lab import LAB_PROGRAMS, UNPRIVILEGED_LAB_PROGRAMS

ROOT = Path(__file__).resolve().parent.parent
SCANNED = [ROOT / "src" / "tcpscope", ROOT / "tests", ROOT / "scripts", ROOT / "bench"]

#: Calls whose command is a list among their first two arguments.
EXEC_CALLS = {"run", "Popen", "check_output", "check_call", "call", "cmd", "sh", "first_line"}
#: Names a command is assigned to, or functions that return one.
COMMAND_NAME = re.compile(r"(^|_)(cmd|argv|command)$", re.IGNORECASE)
#: Calls that look a program up by name.
LOOKUPS = {"which", "require_tool"}
PROGRAM = re.compile(r"^[a-z][a-z0-9+._-]*$")


def _const(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _programs_of(words: list[ast.AST]) -> list[str]:
    """The programs a command (its words) runs: its first word, and the command that
    ``ip netns exec NS`` or ``nsenter --net=NS`` runs in turn."""
    texts = [_const(w) for w in words]
    if not texts or texts[0] is None or not PROGRAM.match(texts[0]):
        return []
    out = [texts[0]]
    if texts[:3] == ["ip", "netns", "exec"] and len(texts) > 4 and texts[4] is not None:
        out += _programs_of(words[4:])
    if texts[0] == "nsenter":
        rest = [i for i, t in enumerate(texts[1:], 1) if t is None or not t.startswith("-")]
        if rest:
            out += _programs_of(words[rest[0]:])
    return out


def _sequence(node: ast.AST | None) -> list[ast.AST] | None:
    return list(node.elts) if isinstance(node, (ast.List, ast.Tuple)) else None


def _call_name(call: ast.Call) -> str | None:
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None


def word_runners(tree: ast.AST) -> dict[str, int]:
    """The helpers a module defines that take the command word by word (``def run(*cmd)``,
    ``def sh(self, ns, *cmd)``): name -> how many arguments come before the command."""
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.args.vararg is not None and \
                COMMAND_NAME.search(node.args.vararg.arg):
            before = [a.arg for a in node.args.posonlyargs + node.args.args]
            out[node.name] = len([a for a in before if a not in ("self", "cls")])
    return out


def imported_modules(tree: ast.AST) -> set[str]:
    """The last part of the name of every module `tree` imports from."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module.rsplit(".", 1)[-1])
        elif isinstance(node, ast.Import):
            out.update(alias.name.rsplit(".", 1)[-1] for alias in node.names)
    return out


def programs_in(tree: ast.AST, runners: dict[str, int]) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _call_name(node)
            if name in runners and len(node.args) > runners[name] and \
                    _const(node.args[runners[name]]) is not None:
                found.update(_programs_of(node.args[runners[name]:]))
            if name in EXEC_CALLS:
                for arg in node.args[:2]:
                    seq = _sequence(arg)
                    if seq is not None:
                        found.update(_programs_of(seq))
                        break
            elif name in LOOKUPS and node.args and _const(node.args[0]):
                found.add(_const(node.args[0]))  # type: ignore[arg-type]
            for kw in node.keywords:
                if kw.arg == "needs_cmd" and _const(kw.value):
                    found.add(_const(kw.value))  # type: ignore[arg-type]
                elif kw.arg and COMMAND_NAME.search(kw.arg) and _sequence(kw.value):
                    found.update(_programs_of(_sequence(kw.value)))  # type: ignore[arg-type]
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            seq = _sequence(node.value)
            if seq is not None and any(COMMAND_NAME.search(n) for n in names):
                found.update(_programs_of(seq))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                COMMAND_NAME.search(node.name):
            for sub in ast.walk(node):
                if isinstance(sub, ast.Return) and _sequence(sub.value) is not None:
                    found.update(_programs_of(_sequence(sub.value)))  # type: ignore[arg-type]
    return found


def scan(paths: list[Path]) -> dict[str, set[str]]:
    """program -> the files (relative to the project) that run it."""
    files = [path for base in paths for path in sorted(base.rglob("*.py"))
             if ".venv" not in path.parts and "build" not in path.parts]
    trees = {path: ast.parse(path.read_text(encoding="utf-8"), str(path)) for path in files}
    runners_of = {path.stem: word_runners(tree) for path, tree in trees.items()}
    where: dict[str, set[str]] = defaultdict(set)
    for path, tree in trees.items():
        # The word-by-word helpers this module defines or imports (a module of its own).
        runners = dict(runners_of[path.stem])
        for module in imported_modules(tree) & set(runners_of):
            runners.update(runners_of[module])
        for prog in programs_in(tree, runners):
            where[prog].add(str(path.relative_to(ROOT)))
    return where


def setup_table() -> dict[str, tuple[str, str, str]]:
    """scripts/setup's table: program -> (package, tier, why)."""
    text = (ROOT / "scripts" / "setup").read_text()
    body = re.search(r"^PROGRAMS='\n(.*?)^'", text, re.M | re.S)
    assert body, "scripts/setup has no PROGRAMS table"
    table = {}
    for line in body.group(1).splitlines():
        if line.strip():
            prog, pkg, tier, *why = line.split(maxsplit=3)
            table[prog] = (pkg, tier, why[0] if why else "")
    return table


def test_the_scan_finds_what_the_lab_and_live_capture_run() -> None:
    """The scanner itself: the commands written in each of its shapes are found."""
    found = scan(SCANNED)
    assert {"ip", "nft", "ethtool", "tcpdump", "ss", "sysctl"} <= set(found)
    assert "src/tcpscope/lab/topology.py" in found["ethtool"]      # ip netns exec NS ethtool
    assert "src/tcpscope/lab/capture.py" in found["tcpdump"]       # a `command` property
    assert "scripts/fixtures/lifecycle.py" in found["ss"]          # SS_CMD, after nsenter
    assert "tests/test_ladder.py" in found["rsvg-convert"]         # subprocess.run([...])


def test_setup_installs_every_program_the_code_runs() -> None:
    table, found = setup_table(), scan(SCANNED)
    missing = {p: sorted(files) for p, files in found.items() if p not in table}
    assert not missing, f"programs the code runs that scripts/setup does not know: {missing}"
    unused = sorted(set(table) - set(found))
    assert not unused, f"rows of scripts/setup's table that nothing runs any more: {unused}"
    print("\nexternal programs:", ", ".join(f"{p} ({table[p][0]})" for p in sorted(found)))


def test_every_row_has_a_package_and_a_tier() -> None:
    for prog, (pkg, tier, why) in setup_table().items():
        assert tier in {"build", "run", "test", "none"}, prog
        if tier == "none":
            assert pkg == "-" and why, f"{prog}: a program setup does not install says why"
        else:
            assert re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", pkg), prog


def test_what_tcpscope_runs_is_installed_by_every_setup() -> None:
    """The lab and live capture run these: plain `scripts/setup` (and `scripts/demo`)
    installs them too, not only `--test`."""
    table = setup_table()
    runtime = scan([ROOT / "src" / "tcpscope"])
    assert {p: table[p][1] for p in runtime} == {p: "run" for p in runtime}


def test_the_lab_checks_exactly_the_programs_it_runs() -> None:
    """`tcpscope lab run` names a missing program before it starts; its list is the lab's."""
    assert set(LAB_PROGRAMS) == set(scan([ROOT / "src" / "tcpscope" / "lab"]))
    assert set(UNPRIVILEGED_LAB_PROGRAMS) <= set(LAB_PROGRAMS)
