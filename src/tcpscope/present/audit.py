"""`tcpscope audit`: the audit's findings as a table or as JSON Lines, in English or Chinese.

Formatting only: the findings come from analysis/audit (`audit_file`, or the
`Audit` consumer in any pipeline run); this module turns each into its sentence
— what it is, its numbers, and the rule with its threshold — through the i18n
catalogues (``audit.*`` ids), and lays them out:

- ``table``: one line per finding (kind, source, target, count, when, confidence),
  then its sentence, its rule and a sample of its evidence frames; the hosts whose
  ISNs could be judged; plain text within 100 columns;
- ``jsonl``: one object per finding: `Finding.as_dict` plus ``sentence``.

`audit_file(source)` runs the audit over a capture in one streaming pass (the
pipeline with the engine, without endpoint states); `sentence(finding, lang)` is
what other presenters (explain's capture overview, the HTML report) embed. They
can also put an `Audit` among the consumers of their own pipeline run and read
its ``report`` after the run.
"""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from typing import Any, BinaryIO, TextIO

from ..analysis.audit import Audit, AuditReport, Finding
from .i18n import Catalogue, catalogue, pad, wrap

__all__ = ["FORMATS", "audit_file", "sentence", "finding_record", "write_report", "write_audit"]

FORMATS = ("table", "jsonl")
WIDTH = 100
#: finding parameters that are terms of the catalogue, and where they are
_TERMS = {"technique": "audit.technique", "verdict": "audit.verdict", "role": "term.side"}


def audit_file(source: str | os.PathLike | BinaryIO, mode: str = "improved") -> AuditReport:
    """Audit a whole capture (a path, ``-`` or a binary file) in one streaming pass.

    `mode` is the engine's (its retransmission verdicts feed the storm finding);
    tcpscope's own judgement, ``improved``, is the default.
    """
    from ..pipeline import Options, run, warn_damage

    audit = Audit()
    # the audit keeps its own per-host tables: finished connections are freed as they end
    warn_damage(run(source, [audit], Options(mode=mode, states=False, retire=True)))
    assert audit.report is not None
    return audit.report


def _params(f: Finding, cat: Catalogue) -> dict[str, Any]:
    return {k: cat.term(_TERMS[k], v) if k in _TERMS else v for k, v in f.params.items()}


def sentence(f: Finding, lang: str = "en") -> str:
    """What the finding is, its numbers, then its rule and threshold, in `lang`."""
    cat = catalogue(lang)
    p = _params(f, cat)
    return cat.render(f.message, p) + " " + cat.render(f"audit.{f.kind}.rule", p)


def finding_record(f: Finding, lang: str = "en") -> dict[str, Any]:
    """One JSON object: the finding's facts and its sentence."""
    return {**f.as_dict(), "sentence": sentence(f, lang)}


def _when(f: Finding) -> str:
    start = datetime.fromtimestamp(f.first_ts, timezone.utc)
    span = f.last_ts - f.first_ts
    return f"{start:%H:%M:%S} +{span:.1f}s" if f.first_ts else "-"


def write_report(report: AuditReport, fmt: str, lang: str, out: TextIO) -> None:
    """Write an audit report in `fmt` (``table`` or ``jsonl``)."""
    if fmt == "jsonl":
        for f in report.findings:
            out.write(json.dumps(finding_record(f, lang), ensure_ascii=False) + "\n")
        return
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    cat = catalogue(lang)
    attempts = report.stats.get("attempts", 0)
    out.write(cat.render("audit.title", {"name": report.name}) + "\n")
    if not report.findings:
        out.write(cat.render("audit.none", {"attempts": attempts}) + "\n")
    else:
        out.write(cat.render("audit.count", {"count": len(report.findings),
                                             "attempts": attempts}) + "\n\n")
        cols = [("n", 3, ">"), ("kind", 20, "<"), ("source", 16, "<"), ("target", 22, "<"),
                ("count", 6, ">"), ("when", 15, "<"), ("conf", 10, "<")]
        head = " ".join(pad(cat.render(f"audit.col.{c}"), w, a) for c, w, a in cols)
        out.write(head.rstrip() + "\n")
        for i, f in enumerate(report.findings, 1):
            target = f.target or "-"
            port = f.fields.get("port")
            if f.target and port is not None:
                target = f"{f.target}:{port}" if ":" not in f.target else f"[{f.target}]:{port}"
            cells = [str(i), cat.term("audit.kind", f.kind), f.source or "-", target,
                     str(f.count), _when(f), cat.term("audit.conf", f.confidence)]
            out.write(" ".join(pad(v, w, a) for v, (_, w, a) in zip(cells, cols)).rstrip() + "\n")
            p = _params(f, cat)
            for text in (cat.render(f.message, p), cat.render(f"audit.{f.kind}.rule", p),
                         cat.render("audit.evidence", {"frames": sorted(f.evidence.frames),
                                                       "total": f.evidence.total})):
                for line in wrap(text, WIDTH, "    "):
                    out.write(line + "\n")
            out.write("\n")
    if report.isn:
        out.write(cat.render("audit.isn_title") + "\n")
        for h in report.isn:
            text = cat.render("audit.isn_host", {
                "host": h["host"], "verdict": cat.term("audit.verdict", h["verdict"]),
                "count": h["samples"], "gcd": h["gcd"], "isr": h["isr"], "sp": h["sp"],
                "conf": cat.term("audit.conf", h["confidence"])})
            for line in wrap(text, WIDTH, "  ", "    "):
                out.write(line + "\n")
    rows = report.stats.get("untracked_rows", 0)
    if rows:
        out.write(cat.render("audit.untracked", {
            "rows": rows, "capacity": report.stats.get("capacity", 0)}) + "\n")


def write_audit(source: str | os.PathLike | BinaryIO, fmt: str = "table", lang: str = "en",
                out: TextIO | None = None, mode: str = "improved", *,
                name: str | None = None) -> AuditReport:
    """Audit `source` and write the report (titled `name`, default the source's); returns it."""
    import sys

    report = audit_file(source, mode)
    if name is not None:
        report.name = name
    write_report(report, fmt, lang, out if out is not None else sys.stdout)
    return report
