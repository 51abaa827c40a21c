"""Run experiments: set up, capture, clean up, analyse, explain, check, keep.

`run_experiment` always leaves nothing behind: the `Topology` is closed (its
namespaces, and with them every veth, nft table and sysctl, deleted) and every
tcpdump stopped, whether the experiment passed, failed, raised, or was
interrupted (SIGINT / SIGTERM raise KeyboardInterrupt, which propagates after
the cleanup).
"""
from __future__ import annotations

import os
import platform
import shutil
import signal
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from .base import EXPERIMENTS, Context, Experiment, Outcome, Result, is_root
from .capture import CaptureUnavailable, stop_all
from .facts import Facts
from .story import render_story
from .topology import LabError, Topology, cleanup_stale

__all__ = ["run_experiment", "run_many", "interruptible", "list_lines"]

RULE = "=" * 78


@contextmanager
def interruptible() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt while the lab runs, so cleanup always happens."""
    def on_term(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, on_term)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def list_lines() -> list[str]:
    """`tcpscope lab list`: name, what it needs, title; then what the needs mean."""
    width = max(len(n) for n in EXPERIMENTS)
    lines = [f"{'NAME':<{width}}  NEEDS  WHAT"]
    for name, cls in EXPERIMENTS.items():
        lines.append(f"{name:<{width}}  {'root' if cls.needs_root else 'lo':<5}  {cls.title}")
    lines += [
        "",
        "root: network namespaces, veths, nft rules, sysctls — run as root.",
        "lo:   as root, in a fresh namespace's loopback; without root, on this host's loopback",
        "      if tcpdump may capture there (CAP_NET_RAW), else skipped with the reason.",
    ]
    if not is_root():
        lines.append("You are not root: the `root` experiments will be skipped.")
    return lines


def _check(exp: Experiment, ctx: Context, facts: Facts) -> list[Outcome]:
    outcomes = []
    for e in exp.expectations(ctx):
        try:
            passed, detail = e.check(facts)
        except Exception as exc:  # noqa: BLE001 - a broken check is a failed expectation
            passed, detail = False, f"check raised {type(exc).__name__}: {exc}"
        outcomes.append(Outcome(e, bool(passed), detail))
    return outcomes


def _kernel_view(ctx: Context, facts: Facts, out: IO[str]) -> None:
    """What the kernel showed (ss samples, counters), times relative to the first packet."""
    shown = False
    for key, value in ctx.kernel.items():
        if not (isinstance(value, list) and value and isinstance(value[0], tuple)):
            continue
        if not shown:
            out.write("\nDuring the run:\n")
            shown = True
        last = None
        for wall, text in value:
            lines = [ln for ln in text.splitlines() if ln.strip()]
            body = "\n".join(lines[1:])  # without the header
            if body == last:
                continue
            last = body
            rel = wall - facts.t0
            out.write(f"  t={0.0 if abs(rel) < 0.005 else rel:+.2f}s  "
                      f"$ {ctx.kernel.get(key + '_cmd', 'ss')}\n")
            for ln in lines[:12]:
                out.write(f"      {ln}\n")
            if len(lines) > 12:
                out.write(f"      ... {len(lines) - 12} more lines\n")
    for note in ctx.kernel_notes:
        if not shown:
            out.write("\nDuring the run:\n")
            shown = True
        out.write(f"  {note}\n")


def _para(text: str) -> str:
    """A docstring-style paragraph as one line per paragraph (blank lines kept)."""
    return "\n\n".join(" ".join(p.split()) for p in textwrap.dedent(text).strip().split("\n\n"))


def _write_readme(path: Path, exp: Experiment, ctx: Context, facts: Facts | None,
                  outcomes: list[Outcome], capture_name: str) -> None:
    from .. import __version__

    topo = ctx.topo
    lines = [
        f"# tcpscope lab: {exp.name} — {exp.title}",
        "",
        f"Made by `tcpscope lab run {exp.name} --keep DIR` (tcpscope {__version__}) on "
        f"{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}, Linux "
        f"{platform.release()}. The capture is `{capture_name}`: open it with "
        f"`tcpscope read -# {capture_name}`, `tcpdump -nn -r {capture_name}` or Wireshark.",
        "",
        "## What it does",
        "",
        _para(exp.does),
        "",
        "## Topology",
        "",
    ]
    if topo is not None:
        lines += [f"- {d}" for d in topo.describe()]
        lines += ["", "Everything lived in network namespaces made for this run and deleted "
                  "afterwards (their veths, nft tables and sysctls with them)."]
    else:
        lines.append("- this host's loopback (no root: no namespace)")
    if ctx.tcpdump is not None:
        lines += ["", "Capture:", "", "```", ctx.tcpdump.shell_command(capture_name), "```"]
    if topo is not None and topo.commands:
        lines += ["", "## Commands, in order", "", "```"]
        lines += topo.commands
        lines += ["```"]
    sysctls = {}
    if topo is not None:
        sysctls = topo.sysctls
    read = ctx.params.get("sysctls_read", {})
    if sysctls or read:
        lines += ["", "## Sysctls", ""]
        for ns, kv in sysctls.items():
            for k, v in kv.items():
                lines.append(f"- `{k} = {v}` (set in {ns})")
        for k, v in read.items():
            lines.append(f"- `{k} = {v}` (as the kernel had it)")
    if ctx.program:
        lines += ["", "## The programs", ""]
        lines += [f"{i}. {step}" for i, step in enumerate(ctx.program, 1)]
    lines += ["", "## What you should see", ""]
    for o in outcomes:
        src = " (kernel view)" if o.expectation.source == "kernel" else ""
        lines.append(f"- **{'PASS' if o.passed else 'FAIL'}** {o.expectation.text}{src} — "
                     f"seen: {o.detail}")
    if exp.look_at:
        lines += ["", "## What to look at", "", _para(exp.look_at)]
    if exp.why:
        lines += ["", "## Why", "", _para(exp.why)]
    if facts is not None and ctx.kernel:
        import io

        buf = io.StringIO()
        _kernel_view(ctx, facts, buf)
        body = buf.getvalue().strip("\n").split("\n")[1:]  # without its "During the run:"
        if body:
            lines += ["", "## During the run (the kernel: ss, counters; the relay)", "", "```",
                      *body, "```"]
    path.write_text("\n".join(lines) + "\n")


def run_experiment(name: str, out: IO[str], *, keep: Path | None = None,
                   listing_limit: int | None = None) -> Result:
    """Run one experiment, explain its capture and check its expectations."""
    exp = EXPERIMENTS[name]()
    root = is_root()
    out.write(f"{RULE}\n{exp.name}: {exp.title}\n{RULE}\n")
    out.write(textwrap.fill(_para(exp.does), 100) + "\n\n")
    if exp.needs_root and not root:
        reason = "needs root (network namespaces, nft, sysctls); run it as root"
        out.write(f"SKIPPED: {reason}\n\n")
        return Result(name, "skipped", reason=reason)
    started = time.monotonic()
    # The pid in the name tells this run's files and tcpdump apart from another lab's.
    workdir = Path(tempfile.mkdtemp(prefix=f"tcpscope-lab-{os.getpid()}-{name}-"))
    topo = Topology(name) if root else None
    ctx = Context(exp, workdir, topo)
    try:
        try:
            if topo is not None:
                topo.__enter__()
            exp.run(ctx)
        finally:
            stop_all()
            if topo is not None:
                topo.close()
        ran = time.monotonic() - started
        facts = Facts.from_capture(ctx.capture_path, mode="improved")
        facts.kernel = ctx.kernel
        if ctx.tcpdump is not None:
            out.write(f"captured with: {ctx.tcpdump.shell_command()}\n")
        render_story(facts, out, listing_limit or getattr(exp, "listing_limit", 40))
        _kernel_view(ctx, facts, out)
        outcomes = _check(exp, ctx, facts)
        out.write("\nWhat you should see:\n")
        for o in outcomes:
            src = " [kernel]" if o.expectation.source == "kernel" else ""
            out.write(f"  {'PASS' if o.passed else 'FAIL'}  {o.expectation.text}{src}\n"
                      f"        seen: {o.detail}\n")
        passed = sum(o.passed for o in outcomes)
        status = "passed" if passed == len(outcomes) else "failed"
        result = Result(name, status, ran, outcomes)
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            dest = keep / f"{name}.pcap"
            shutil.copyfile(ctx.capture_path, dest)
            readme = keep / f"{name}.README.md"
            _write_readme(readme, exp, ctx, facts, outcomes, dest.name)
            result.capture = dest
            out.write(f"\nkept: {dest} and {readme}\n")
        out.write(f"\n{name}: {passed}/{len(outcomes)} expectations passed "
                  f"({ran:.1f} s)\n\n")
        return result
    except CaptureUnavailable as exc:
        reason = f"{exc}; run as root, or give tcpdump CAP_NET_RAW"
        out.write(f"SKIPPED: {reason}\n\n")
        return Result(name, "skipped", time.monotonic() - started, reason=reason)
    except LabError as exc:
        out.write(f"ERROR: {exc}\n\n")
        return Result(name, "error", time.monotonic() - started, reason=str(exc))
    except Exception as exc:  # noqa: BLE001 - one broken experiment must not stop the others
        reason = f"{type(exc).__name__}: {exc}"
        out.write(f"ERROR: {reason}\n\n")
        return Result(name, "error", time.monotonic() - started, reason=reason)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run_many(names: list[str], out: IO[str], *, keep: Path | None = None) -> list[Result]:
    """Run experiments in order; a summary table at the end."""
    if is_root():
        stale = cleanup_stale()
        if stale:
            out.write(f"(removed {len(stale)} namespaces left by a lab that died: "
                      f"{', '.join(stale)})\n")
    results = []
    started = time.monotonic()
    with interruptible():
        for name in names:
            results.append(run_experiment(name, out, keep=keep))
    total = time.monotonic() - started
    if len(results) > 1:
        out.write(f"{RULE}\nlab summary ({total:.1f} s)\n")
        for r in results:
            n = len(r.outcomes)
            ok = sum(o.passed for o in r.outcomes)
            extra = f"{ok}/{n} expectations" if n else r.reason
            out.write(f"  {r.status.upper():<8} {r.name:<20} {r.seconds:5.1f} s  {extra}\n")
    if keep is not None and len(results) > 1:
        index = [f"# tcpscope lab captures ({len(results)} experiments)", ""]
        for r in results:
            if r.capture is not None:
                index.append(f"- `{r.capture.name}` ({r.status}): see `{r.name}.README.md`")
            else:
                index.append(f"- {r.name}: {r.status} {r.reason}")
        (keep / "README.md").write_text("\n".join(index) + "\n")
    return results

