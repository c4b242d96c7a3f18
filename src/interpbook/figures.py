"""One plotting style and one way to save a figure, with provenance, for the whole book.

``save(fig, "collapse")`` shows the figure inline (in Jupyter) and writes
``build/figures/<chapter>/collapse.png`` and ``.svg``; the PNG's text chunks and the SVG's metadata
carry the chapter, notebook, scale, seed, device, git commit and package versions.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from interpbook import paths, session

STYLE = {
    "figure.dpi": 110,
    "savefig.dpi": 130,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "font.size": 10,
    "axes.titlesize": 10,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "svg.hashsalt": "interpbook",  # stable SVG ids: same inputs, same file
}

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def use_style() -> None:
    """Apply the book's matplotlib style (seaborn's colour palette, light grid, no top/right spines)."""
    import matplotlib as mpl
    import seaborn as sns

    sns.set_palette("colorblind")
    mpl.rcParams.update(STYLE)


def figure_dir(chapter: str | None = None) -> Path:
    """Where the book reads a chapter's figures: ``build/figures/<chapter>/``."""
    run = session.current()
    slug = chapter or (run.chapter if run else "_scratch")
    return paths.build_dir() / "figures" / slug


def staging_dir(chapter: str, notebook: str, build: Path | None = None) -> Path:
    """Where a running notebook's figures wait until :func:`interpbook.finish` installs them."""
    return (build or paths.build_dir()) / ".staging" / chapter / notebook


def install_staged(chapter: str, notebook: str) -> list[Path]:
    """Move a run's staged figures into :func:`figure_dir` (each file replaced atomically)."""
    staged, out = staging_dir(chapter, notebook), figure_dir(chapter)
    moved = []
    if staged.is_dir():
        out.mkdir(parents=True, exist_ok=True)
        for f in sorted(staged.iterdir()):
            if f.is_file() and not f.name.startswith("."):
                os.replace(f, out / f.name)
                moved.append(out / f.name)
        shutil.rmtree(staged, ignore_errors=True)
    return moved


def metadata() -> dict:
    run = session.current()
    prov = session.provenance()
    info = {
        "chapter": run.chapter if run else None,
        "notebook": run.notebook if run else None,
        "scale": run.scale if run else None,
        "seed": run.seed if run else None,
        "device": run.device if run else None,
        **prov,
    }
    return info


def save(fig, name: str, *, show: bool = True) -> Path:
    """Write ``fig`` as PNG and SVG for ``build/figures/<chapter>/`` and display it inline.

    Inside a run (after :func:`interpbook.start`) the files are staged and :func:`interpbook.finish`
    installs them, so a notebook that fails half-way never leaves part of its figures where the book reads
    them (the returned path is then the staged file). Without a run they are written there directly.

    Args:
        fig: a matplotlib figure.
        name: file stem (letters, digits, ``_ . -``), unique within the chapter.
        show: display the figure in the notebook (the figure is closed afterwards either way, so it
            is not shown twice).

    Returns:
        The path of the PNG.
    """
    import matplotlib.pyplot as plt

    if not _NAME.match(name):
        raise ValueError(f"figure name {name!r} must be letters, digits, '_', '.', '-' (no folders)")
    run = session.current()
    out = staging_dir(run.chapter, run.notebook) if run is not None else figure_dir()
    out.mkdir(parents=True, exist_ok=True)
    info = metadata()
    desc = json.dumps(info, sort_keys=True)
    png, svg = out / f"{name}.png", out / f"{name}.svg"
    for path, meta in (
        (png, {"Title": name, "Description": desc, "Software": "interpbook"}),
        (svg, {"Title": name, "Description": desc, "Date": None}),
    ):
        tmp = path.with_name(f".{path.stem}.{os.getpid()}{path.suffix}")
        fig.savefig(tmp, metadata=meta, bbox_inches="tight")
        os.replace(tmp, path)
    if run is not None and f"{name}.png" not in run.figures:
        run.figures.append(f"{name}.png")
    if show:
        try:
            from IPython import get_ipython
            from IPython.display import display

            if get_ipython() is not None:
                display(fig)
        except ImportError:
            pass
    plt.close(fig)
    return png


def read_metadata(png: str | Path) -> dict:
    """The provenance dictionary stored in a PNG written by :func:`save`."""
    from PIL import Image

    with Image.open(png) as im:
        return json.loads(im.text["Description"])
