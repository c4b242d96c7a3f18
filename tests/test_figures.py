"""interpbook.figures: files, provenance metadata, bad names."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest

import interpbook
from interpbook import figures


def test_save_writes_png_svg_with_provenance(build_dir):
    interpbook.start("demo", "01_demo", scale="ci", seed=3, device="cpu",
                     scales={"smoke": {}, "ci": {}, "full": {}})
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    staged = figures.save(fig, "line")
    assert staged.is_file() and not (build_dir / "figures" / "demo" / "line.png").exists()  # staged until finish
    interpbook.finish()
    png = build_dir / "figures" / "demo" / "line.png"
    assert png.is_file() and png.with_suffix(".svg").is_file() and not staged.exists()
    meta = figures.read_metadata(png)
    assert meta["chapter"] == "demo" and meta["scale"] == "ci" and meta["seed"] == 3
    assert {"commit", "versions"} <= set(meta)
    assert "line.png" in interpbook.session.current().figures
    assert not plt.get_fignums(), "the figure is closed so it is not displayed twice"
    assert not list(png.parent.glob(".*")), "no temporary files left behind"


@pytest.mark.parametrize("name", ["../escape", "a/b", "", ".hidden"])
def test_bad_names_rejected(build_dir, name):
    fig = plt.figure()
    with pytest.raises(ValueError, match="figure name"):
        figures.save(fig, name)
    plt.close(fig)


def test_a_run_that_stops_half_way_leaves_no_figures_where_the_book_reads(build_dir):
    interpbook.start("demo", "01_demo", scale="ci", seed=0, device="cpu", scales={"smoke": {}, "ci": {}, "full": {}})
    fig = plt.figure()
    figures.save(fig, "half")
    assert not (build_dir / "figures" / "demo").exists()  # nothing installed without finish()
    interpbook.start("demo", "01_demo", scale="ci", seed=0, device="cpu", scales={"smoke": {}, "ci": {}, "full": {}})
    assert not figures.staging_dir("demo", "01_demo").exists()  # a new run clears the leftovers
