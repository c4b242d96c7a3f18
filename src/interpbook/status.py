"""The reproduction status page: every claim of every executed notebook, generated from results files.

Context: each chapter notebook ends with ``interpbook.finish()``, which writes
``<results>/<scale>/<chapter>/<notebook>.json`` (claims with value, threshold and verdict, runtime, seed,
device, commit). The runner also keeps ``<results>/<scale>/_runs.json``, one record per notebook run
(``ok | cached | failed | timeout``, seconds, error), so a notebook that crashed before writing its
results still shows up. This module reads both and writes ``build/status.md``, a MyST page that the book
lists in its table of contents. Nothing on the page is typed by hand.

Standard library only: the page is regenerated after every run, without importing torch.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

SCALE_ORDER = ("ci", "full", "smoke")
RUNS_FILE = "_runs.json"
FAILED_RUNS = ("failed", "timeout")
OP_SYMBOLS = {">=": "≥", ">": ">", "<=": "≤", "<": "<"}
VERDICTS = {
    "reproduced": "✅ reproduced",
    "failed": "❌ failed (holds)",
    "not-reproduced": "⚠️ not reproduced (at-risk)",
}
# A results file older than the failed run it belongs to (beyond this slack) is from an earlier run.
STALE_SLACK_S = 5.0


# ---------------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------------


def _read_json(path: Path) -> tuple[dict | None, str | None]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    if not isinstance(data, dict):
        return None, "not a JSON object"
    return data, None


def collect_results(result_dirs) -> list[dict]:
    """Read every notebook's results file and run record under ``result_dirs``.

    Each directory is laid out as ``<dir>/<scale>/<chapter>/<notebook>.json`` with an optional runner
    record ``<dir>/<scale>/_runs.json``. Missing directories are skipped. When the same
    ``(scale, chapter, notebook)`` appears in several directories, the first directory wins (the book
    passes the fresh ``build/results`` before the committed ``results``).

    Returns:
        One dict per notebook run, sorted by scale (ci, full, smoke, others), chapter and notebook. Keys:
        ``scale``, ``chapter``, ``notebook``, ``source`` (the results file or ``None``), ``results`` (the
        parsed JSON or ``None``), ``error`` (why the file could not be read, or ``None``) and ``run`` (the
        runner's record or ``None``).
    """
    entries: dict[tuple[str, str, str], dict] = {}
    runs: dict[tuple[str, str, str], dict] = {}
    for base in map(Path, result_dirs):
        if not base.is_dir():
            continue
        for scale_dir in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
            scale = scale_dir.name
            record, _ = _read_json(scale_dir / RUNS_FILE) if (scale_dir / RUNS_FILE).is_file() else ({}, None)
            for key, run in (record or {}).items():
                chapter, _, notebook = str(key).partition("/")
                if notebook and isinstance(run, dict):
                    runs.setdefault((scale, chapter, notebook), run)
            for path in sorted(scale_dir.glob("*/*.json")):
                if path.name.startswith((".", "_")):
                    continue
                ident = (scale, path.parent.name, path.stem)
                if ident in entries:
                    continue
                data, error = _read_json(path)
                entries[ident] = {"scale": scale, "chapter": ident[1], "notebook": ident[2],
                                  "source": path, "results": data, "error": error, "run": None}
    for ident, run in runs.items():
        entry = entries.setdefault(ident, {"scale": ident[0], "chapter": ident[1], "notebook": ident[2],
                                           "source": None, "results": None, "error": None, "run": None})
        entry["run"] = run
    return [entries[k] for k in sorted(entries, key=lambda k: (_scale_rank(k[0]), k))]


def _scale_rank(scale: str) -> tuple[int, str]:
    return (SCALE_ORDER.index(scale), "") if scale in SCALE_ORDER else (len(SCALE_ORDER), scale)


# ---------------------------------------------------------------------------------------------------
# Verdicts and counts
# ---------------------------------------------------------------------------------------------------


def verdict(claim: dict) -> str:
    """``"reproduced"``, ``"failed"`` (a ``holds`` claim that missed) or ``"not-reproduced"`` (at-risk)."""
    if claim.get("held"):
        return "reproduced"
    return "not-reproduced" if claim.get("expect") == "at-risk" else "failed"


def _claims(entry: dict) -> list[dict]:
    claims = (entry.get("results") or {}).get("claims") or []
    return [c for c in claims if isinstance(c, dict)]


def _run_failed(entry: dict) -> bool:
    return (entry.get("run") or {}).get("status") in FAILED_RUNS or entry.get("error") is not None


def totals(entries: list[dict]) -> dict:
    """Counts over ``entries``: chapters, notebooks, failed notebooks, claims by verdict."""
    verdicts = [verdict(c) for e in entries for c in _claims(e)]
    return {
        "chapters": len({e["chapter"] for e in entries}),
        "notebooks": len(entries),
        "notebooks_failed": sum(_run_failed(e) for e in entries),
        "claims": len(verdicts),
        "reproduced": verdicts.count("reproduced"),
        "failed": verdicts.count("failed"),
        "not_reproduced": verdicts.count("not-reproduced"),
    }


# ---------------------------------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------------------------------


def fmt_number(x) -> str:
    """A number with 3 significant digits (integers as they are); anything else as text."""
    if isinstance(x, bool) or x is None:
        return str(x)
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "∞" if x > 0 else "−∞"
        return f"{x:.3g}" if x != 0 else "0"  # no "-0"
    return str(x)


def fmt_test(claim: dict) -> str:
    """``value op threshold``, e.g. ``0.93 ≥ 0.9`` or ``0.1 ≤ 0.25 ≤ 0.5`` for ``between``."""
    value, op, threshold = claim.get("value"), claim.get("op"), claim.get("threshold")
    if op == "between" and isinstance(threshold, (list, tuple)) and len(threshold) == 2:
        return f"{fmt_number(threshold[0])} ≤ {fmt_number(value)} ≤ {fmt_number(threshold[1])}"
    return f"{fmt_number(value)} {OP_SYMBOLS.get(op, op)} {fmt_number(threshold)}"


def cell(text) -> str:
    """Authored text (a claim statement, may hold math) made safe for one table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


_MARKUP = re.compile(r"([\\`*_\[\]<>|$#{}])")


def plain(text, limit: int | None = None) -> str:
    """Arbitrary text (an error message) shown literally: one line, Markdown characters escaped."""
    text = " ".join(str(text).split())
    if limit and len(text) > limit:
        text = text[: limit - 1] + "…"
    return _MARKUP.sub(r"\\\1", text)


def _doc_link(entry: dict, root: Path | None) -> str:
    name = f"{entry['chapter']}/{entry['notebook']}"
    doc = f"/build/executed/notebooks/{entry['chapter']}/{entry['notebook']}"
    if root is not None and (Path(root) / f"{doc.lstrip('/')}.ipynb").is_file():
        return f"{{doc}}`{name} <{doc}>`"
    return f"`{name}`"


def _bib_keys(root: Path | None) -> set[str]:
    if root is None:
        return set()
    try:
        text = (Path(root) / "book" / "references.bib").read_text(encoding="utf-8")
    except OSError:
        return set()
    return set(re.findall(r"@\w+\s*\{\s*([^,\s]+)\s*,", text))


def _display(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            pass
    return Path(path).as_posix()


# ---------------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------------


def _totals_table(by_scale: dict[str, list[dict]]) -> list[str]:
    lines = [
        "| Scale | Chapters | Notebooks | Notebooks failed | Claims reproduced | ❌ `holds` claims failing "
        "| ⚠️ `at-risk` claims not reproduced |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    rows = [(f"`{s}`", totals(es)) for s, es in by_scale.items()]
    if len(rows) > 1:
        rows.append(("all", totals([e for es in by_scale.values() for e in es])))
    for name, t in rows:
        lines.append(f"| {name} | {t['chapters']} | {t['notebooks']} | {t['notebooks_failed']} "
                     f"| {t['reproduced']} / {t['claims']} | {t['failed']} | {t['not_reproduced']} |")
    return lines


def _run_line(entry: dict, root: Path | None) -> str:
    res = entry.get("results") or {}
    parts = [f"**{_doc_link(entry, root)}**"]
    if res:
        runtime = res.get("runtime_s")
        parts.append(f"runtime {runtime:.1f} s" if isinstance(runtime, (int, float)) else "runtime ?")
        parts.append(f"device `{plain(res.get('device', '?'))}`")
        parts.append(f"seed {plain(res.get('seed', '?'))}")
        commit = plain(res.get("commit") or "unknown")
        parts.append(f"commit `{commit}`" + (" (uncommitted changes)" if res.get("dirty") else ""))
        if res.get("started"):
            parts.append(f"started {plain(res['started'])}")
    return " · ".join(parts)


def _failure_lines(entry: dict) -> list[str]:
    lines = []
    run = entry.get("run") or {}
    if run.get("status") in FAILED_RUNS:
        seconds = run.get("seconds")
        after = f" after {seconds:.1f} s" if isinstance(seconds, (int, float)) else ""
        error = f": {plain(run['error'], limit=400)}" if run.get("error") else ""
        lines.append(f"❌ **Last run {run['status']}**{after}{error}")
        res = entry.get("results") or {}
        if res and _is_stale(res, run):
            lines.append(f"The claims below come from an earlier run (started {plain(res.get('started'))}).")
    if not entry.get("results") and entry.get("error") is None:
        lines.append("No results file was written.")
    if entry.get("error") is not None:
        lines.append(f"❌ **Unreadable results file** `{entry['source'].name}`: {plain(entry['error'], 300)}")
    return lines


def _is_stale(results: dict, run: dict) -> bool:
    """True when the results file was written by a run that began before the failed run did."""
    from datetime import datetime

    try:
        started = datetime.fromisoformat(str(results["started"]))
        finished = datetime.fromisoformat(str(run["finished"]))
        seconds = float(run.get("seconds") or 0.0)
    except (KeyError, TypeError, ValueError):
        return False
    try:
        return (finished - started).total_seconds() > seconds + STALE_SLACK_S
    except TypeError:  # one timestamp naive, the other aware
        return False


def _claims_table(claims: list[dict]) -> list[str]:
    lines = [
        "| Claim | Statement | Ours vs threshold | Paper | Expected | Verdict |",
        "|---|---|---|---|---|---|",
    ]
    for c in claims:
        statement = cell(c.get("statement", ""))
        if c.get("source"):
            statement += f" ({cell(c['source'])})"
        verdict_text = VERDICTS[verdict(c)]
        if c.get("note"):
            verdict_text += f": {cell(c['note'])}"
        paper = cell(c["paper"]) if c.get("paper") not in (None, "") else "—"
        lines.append(f"| {cell(c.get('id', '?'))} | {statement} | {fmt_test(c)} | {paper} "
                     f"| `{cell(c.get('expect', '?'))}` | {verdict_text} |")
    return lines


def _chapter_section(chapter: str, entries: list[dict], root: Path | None, bib: set[str]) -> list[str]:
    first = next((e["results"] for e in entries if e.get("results")), {}) or {}
    title = first.get("title")
    heading = f"### {chapter}" + (f": {cell(title)}" if title else "")
    lines = [heading, ""]
    paper = first.get("paper")
    if paper:
        ref = f"{{cite:p}}`{paper}`" if paper in bib else f"`{plain(paper)}`"
        lines += [f"Paper: {ref}", ""]
    for entry in entries:
        lines += [_run_line(entry, root), ""]
        for line in _failure_lines(entry):
            lines += [line, ""]
        claims = _claims(entry)
        if claims:
            lines += [*_claims_table(claims), ""]
        elif entry.get("results"):
            lines += ["No claims recorded.", ""]
    return lines


def render(entries: list[dict], result_dirs, root: Path | None = None) -> str:
    """The status page as MyST Markdown."""
    sources = ", ".join(f"`{_display(Path(d), root)}`" for d in result_dirs) or "(none)"
    lines = [
        "# Reproduction status",
        "",
        f"*Generated by `interpbook.status` from the results files in {sources}; regenerate with "
        "`python -m interpbook status` (the runner does so after every run). Do not edit by hand.*",
        "",
    ]
    if not entries:
        lines += [
            "No results yet: no notebook has been executed into these folders. Run a chapter with "
            "`make chapter CH=<chapter>` or everything with `make book`, then rebuild this page.",
            "",
        ]
        return "\n".join(lines)
    by_scale: dict[str, list[dict]] = {}
    for e in entries:
        by_scale.setdefault(e["scale"], []).append(e)
    lines += [
        "A claim marked `holds` must reproduce at its scale; `at-risk` claims are recorded and shown as "
        "not reproduced when they fail, with the chapter's reason. Numbers are shown to 3 significant "
        "digits.",
        "",
        *_totals_table(by_scale),
        "",
    ]
    missing = _chapters_without_ci_results(entries, root)
    if missing:
        lines += ["Chapters with notebooks but no `ci` results in these folders (not run yet, or run at another "
                  f"scale only): {', '.join(f'`{c}`' for c in missing)}.", ""]
    bib = _bib_keys(root)
    for scale, scale_entries in by_scale.items():
        lines += [f"## Scale `{scale}`", ""]
        chapters: dict[str, list[dict]] = {}
        for e in scale_entries:
            chapters.setdefault(e["chapter"], []).append(e)
        for chapter, chapter_entries in chapters.items():
            lines += _chapter_section(chapter, chapter_entries, root, bib)
    return "\n".join(lines).rstrip("\n") + "\n"


def _chapters_without_ci_results(entries: list[dict], root: Path | None) -> list[str]:
    """Chapters found under ``<root>/notebooks`` that have no ``ci`` entry (results or run record)."""
    if root is None or not (Path(root) / "notebooks").is_dir():
        return []
    from interpbook.runner import discover

    seen = {e["chapter"] for e in entries if e["scale"] == "ci"}
    return [c for c in discover(Path(root)) if c not in seen]


def write_status_page(out_path, result_dirs, root: Path | None = None) -> Path:
    """Collect results from ``result_dirs`` and write the status page to ``out_path`` atomically.

    Args:
        out_path: where the Markdown page goes (the book lists ``build/status``).
        result_dirs: result folders, each ``<dir>/<scale>/<chapter>/<notebook>.json``; earlier ones win.
        root: the repository root. Links to executed notebooks are emitted only for notebooks that exist
            under it, and citations only for keys in its ``book/references.bib``, so that a
            ``-W`` book build never meets a dangling reference. Without it, both are plain text.

    Returns:
        ``out_path`` as a ``Path``.
    """
    out_path = Path(out_path)
    result_dirs = [Path(d) for d in result_dirs]
    text = render(collect_results(result_dirs), result_dirs, root)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out_path)
    return out_path


def main_status(root: Path) -> Path:
    """Write ``status.md`` in the build folder (``<root>/build`` or ``$INTERPBOOK_BUILD``, where the runner
    writes results) from its ``results`` and the committed ``<root>/results``."""
    from interpbook import paths

    root = Path(root)
    build = paths.build_dir(root)
    return write_status_page(build / "status.md", [build / "results", root / "results"], root=root)
