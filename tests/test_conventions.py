"""Conventions every chapter and the repository follow (DESIGN.md)."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import jupytext
import pytest
import tomllib
import yaml

from interpbook import paths, runner

ROOT = paths.repo_root(Path(__file__).parent)
SOURCES = [s for sources in runner.discover(ROOT).values() for s in sources]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_notebook_shape(source):
    nb = jupytext.read(source)
    code = [c for c in nb.cells if c.cell_type == "code"]
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert params and params[0] is code[0], "the first code cell is tagged 'parameters'"
    names = {t.id for node in ast.parse(params[0].source).body if isinstance(node, ast.Assign) for t in node.targets}
    assert {"scale", "seed", "device"} <= names
    text = source.read_text()
    started = re.search(r'interpbook\.start\(\s*"([^"]+)",\s*"([^"]+)"', text)
    assert started and started.groups() == (source.parent.name, source.stem), "start() names this chapter"
    assert "SCALES = {" in text and all(f'"{s}"' in text for s in ("smoke", "ci", "full"))
    assert "claims.check(" in text, "the notebook states claims"
    assert "figures.save(" in text, "the notebook saves figures through interpbook.figures"
    assert "interpbook.finish()" in text
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    assert all(not c.get("outputs") for c in code), "sources carry no outputs"
    assert 'matplotlib.use("Agg")' not in text, "Agg would strip inline figures from the page"


def test_no_committed_ipynb_in_notebooks():
    tracked = subprocess.run(["git", "ls-files", "notebooks"], capture_output=True, text=True, cwd=ROOT).stdout
    assert not [line for line in tracked.splitlines() if line.endswith(".ipynb")]


def test_every_chapter_in_toc():
    toc = (ROOT / "_toc.yml").read_text()
    for source in SOURCES:
        entry = f"build/executed/notebooks/{source.parent.name}/{source.stem}"
        assert entry in toc, f"{entry} missing from _toc.yml"


def test_no_torchvision_or_timm():
    pattern = re.compile(r"^\s*(import|from)\s+(torchvision|timm)\b", re.M)
    offenders = [p for folder in ("src", "notebooks", "tests", "tools") for p in (ROOT / folder).rglob("*.py")
                 if pattern.search(p.read_text())]
    assert not offenders


def _requirement(spec: str) -> str:
    return re.sub(r"\s+", "", spec)


def test_environment_yml_mirrors_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(map(_requirement, project["dependencies"]))
    for extra in project["optional-dependencies"].values():
        wanted |= set(map(_requirement, extra))
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = {_requirement(s) for s in pip if not s.startswith("-e")}
    assert listed == wanted, f"only in pyproject: {wanted - listed}; only in environment.yml: {listed - wanted}"


def test_constraints_pin_torch():
    assert "torch==2.13.0" in (ROOT / "constraints.txt").read_text().split()


def test_no_control_characters_in_sources():
    """A stray escape ("\\a" in a non-raw string) turns '\\alpha' into a bell character: catch it in every source."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "*.py", "*.md", "*.yml", "*.bib"],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    bad = [f"{name}:{i}" for name in files if (ROOT / name).is_file()
           for i, line in enumerate((ROOT / name).read_text(errors="replace").splitlines(), 1)
           if re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", line)]
    assert not bad, f"control characters (e.g. a bell from '\\a') in: {', '.join(bad[:10])}"
