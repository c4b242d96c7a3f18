"""The status page is generated from results files: totals, verdicts, failed runs, links, empty input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from interpbook import status


def claim(id, value, op, threshold, expect="holds", held=True, **extra):
    return {"id": id, "statement": f"statement of {id}", "source": "Fig. 1", "value": value, "op": op,
            "threshold": threshold, "expect": expect, "held": held, "paper": None, "note": None, **extra}


def results(chapter, notebook, claims, scale="ci", **extra):
    return {"schema": 1, "chapter": chapter, "notebook": notebook, "title": f"Title of {chapter}",
            "paper": "godfrey2023subspace", "scale": scale, "seed": 0, "device": "cpu",
            "started": "2026-11-22T21:00:00+00:00", "runtime_s": 31.24, "commit": "abc1234", "dirty": False,
            "versions": {"python": "3.11.7"}, "settings": {}, "figures": [], "claims": claims, **extra}


def write(base: Path, payload: dict) -> Path:
    path = base / payload["scale"] / payload["chapter"] / f"{payload['notebook']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload))
    return path


def write_runs(base: Path, scale: str, record: dict) -> None:
    (base / scale).mkdir(parents=True, exist_ok=True)
    (base / scale / "_runs.json").write_text(json.dumps(record))


@pytest.fixture
def book(tmp_path):
    """A fake repository: fresh results, committed results, one executed notebook and a bib file."""
    build, committed = tmp_path / "build" / "results", tmp_path / "results"
    write(build, results("alpha", "01_a", [
        claim("A1", 0.93, ">=", 0.9),
        claim("A2", 0.5, "between", [0.2, 0.8]),
        claim("A3", 0.1, ">", 0.3, expect="at-risk", held=False, note="needs the full dataset"),
    ]))
    write(build, results("beta", "01_b", [claim("B1", 2.0, "<", 1.0, held=False, paper="0.4")]))
    write(committed, results("alpha", "01_a", [claim("OLD", 0.0, ">=", 1.0, held=False)], scale="full"))
    # the same notebook in both folders: build/results wins
    write(committed, results("beta", "01_b", [claim("SHADOWED", 0.0, ">=", 1.0, held=False)]))
    write_runs(build, "ci", {
        "gamma/01_c": {"status": "timeout", "seconds": 600.0, "error": "timed out | after 600 s",
                       "finished": "2026-11-22T21:10:00+00:00"},
        "alpha/01_a": {"status": "ok", "seconds": 31.0, "error": None,
                       "finished": "2026-11-22T21:00:31+00:00"},
    })
    nb = tmp_path / "build" / "executed" / "notebooks" / "alpha" / "01_a.ipynb"
    nb.parent.mkdir(parents=True)
    nb.write_text("{}")
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "references.bib").write_text("@misc{godfrey2023subspace,\n  title = {x},\n}\n")
    return tmp_path


def page(root: Path) -> str:
    out = status.write_status_page(root / "build" / "status.md",
                                   [root / "build" / "results", root / "results"], root=root)
    return out.read_text()


def test_collect_results_orders_scales_and_prefers_the_first_folder(book):
    entries = status.collect_results([book / "build" / "results", book / "results"])
    keys = [(e["scale"], e["chapter"], e["notebook"]) for e in entries]
    assert keys == [("ci", "alpha", "01_a"), ("ci", "beta", "01_b"), ("ci", "gamma", "01_c"),
                    ("full", "alpha", "01_a")]
    beta = entries[1]
    assert [c["id"] for c in beta["results"]["claims"]] == ["B1"]
    gamma = entries[2]
    assert gamma["results"] is None and gamma["run"]["status"] == "timeout"


def test_totals(book):
    entries = status.collect_results([book / "build" / "results", book / "results"])
    ci = [e for e in entries if e["scale"] == "ci"]
    assert status.totals(ci) == {"chapters": 3, "notebooks": 3, "notebooks_failed": 1, "claims": 4,
                                 "reproduced": 2, "failed": 1, "not_reproduced": 1}
    everything = status.totals(entries)
    assert (everything["chapters"], everything["claims"], everything["failed"]) == (3, 5, 2)
    text = page(book)
    assert "| `ci` | 3 | 3 | 1 | 2 / 4 | 1 | 1 |" in text
    assert "| all | 3 | 4 | 1 | 2 / 5 | 2 | 1 |" in text


def test_verdict_symbols_values_and_between(book):
    text = page(book)
    a1 = next(line for line in text.splitlines() if line.startswith("| A1 "))
    assert "0.93 ≥ 0.9" in a1 and "✅ reproduced" in a1 and "(Fig. 1)" in a1
    a2 = next(line for line in text.splitlines() if line.startswith("| A2 "))
    assert "0.2 ≤ 0.5 ≤ 0.8" in a2 and "✅ reproduced" in a2
    a3 = next(line for line in text.splitlines() if line.startswith("| A3 "))
    assert "⚠️ not reproduced (at-risk)" in a3 and "needs the full dataset" in a3
    b1 = next(line for line in text.splitlines() if line.startswith("| B1 "))
    assert "2 < 1" in b1 and "❌ failed (holds)" in b1 and "| 0.4 |" in b1
    assert "SHADOWED" not in text


def test_failed_notebook_without_results_is_shown_with_its_error(book):
    text = page(book)
    assert "### gamma" in text
    assert "❌ **Last run timeout** after 600.0 s: timed out \\| after 600 s" in text
    assert "No results file was written." in text


def test_links_only_to_existing_notebooks_and_known_citations(book):
    text = page(book)
    assert "{doc}`alpha/01_a </build/executed/notebooks/alpha/01_a>`" in text
    assert "`beta/01_b`" in text and "notebooks/beta/01_b>" not in text
    assert "{cite:p}`godfrey2023subspace`" in text
    assert "runtime 31.2 s · device `cpu` · seed 0 · commit `abc1234`" in text
    without_root = status.render(status.collect_results([book / "build" / "results"]),
                                 [book / "build" / "results"])
    assert "{doc}" not in without_root and "{cite" not in without_root


def test_scales_appear_in_order(book):
    text = page(book)
    assert text.index("## Scale `ci`") < text.index("## Scale `full`")


def test_statements_escape_pipes_and_formats_three_significant_digits(tmp_path):
    base = tmp_path / "results"
    write(base, results("delta", "01_d", [
        claim("D1", 123456.0, "<=", 0.000123456, statement="a | b\nc", held=False, expect="at-risk"),
        claim("D2", float("nan"), ">=", 1, held=False),
        claim("D3", -0.0, "<=", 0.02),
    ]))
    text = status.write_status_page(tmp_path / "status.md", [base]).read_text()
    d1 = next(line for line in text.splitlines() if line.startswith("| D1 "))
    assert "a \\| b c" in d1 and "1.23e+05 ≤ 0.000123" in d1
    d2 = next(line for line in text.splitlines() if line.startswith("| D2 "))
    assert "nan ≥ 1" in d2 and "❌ failed (holds)" in d2
    assert "| 0 ≤ 0.02 |" in next(line for line in text.splitlines() if line.startswith("| D3 "))


def test_stale_results_after_a_failed_run_are_flagged(tmp_path):
    base = tmp_path / "results"
    write(base, results("eps", "01_e", [claim("E1", 1.0, ">=", 0.5)]))
    write_runs(base, "ci", {"eps/01_e": {"status": "failed", "seconds": 3.0, "error": "ValueError: <bad>",
                                         "finished": "2026-11-23T08:00:00+00:00"}})
    text = status.write_status_page(tmp_path / "status.md", [base]).read_text()
    assert "❌ **Last run failed** after 3.0 s: ValueError: \\<bad\\>" in text
    assert "from an earlier run" in text
    assert status.totals(status.collect_results([base]))["notebooks_failed"] == 1


def test_unreadable_results_file_does_not_break_the_page(tmp_path):
    path = tmp_path / "results" / "ci" / "zeta" / "01_z.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    text = status.write_status_page(tmp_path / "status.md", [tmp_path / "results"]).read_text()
    assert "Unreadable results file" in text and "### zeta" in text


def test_empty_input_gives_a_valid_page(tmp_path):
    out = status.write_status_page(tmp_path / "out" / "status.md", [tmp_path / "missing", tmp_path / "empty"])
    text = out.read_text()
    assert text.startswith("# Reproduction status\n")
    assert "No results yet" in text
    assert "|" not in text
    assert not list(out.parent.glob(".*.tmp"))


def test_main_status_writes_build_status_md(book):
    out = status.main_status(book)
    assert out == book / "build" / "status.md"
    assert "{doc}`alpha/01_a </build/executed/notebooks/alpha/01_a>`" in out.read_text()


def test_chapters_without_ci_results_are_named(book):
    (book / "notebooks" / "delta").mkdir(parents=True)
    (book / "notebooks" / "delta" / "01_d.py").write_text("# a chapter never run\n")
    text = page(book)
    assert "no `ci` results" in text and "`delta`" in text
    assert "`alpha`" not in text.split("no `ci` results")[1].split("\n")[0]
