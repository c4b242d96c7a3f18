"""interpbook.runner: caching, keep-going, atomic outputs, timeouts, clear errors on bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from interpbook import paths, runner

GOOD = '''\
# %% tags=["parameters"]
scale = "ci"
seed = 0
device = "auto"

# %%
import interpbook
from interpbook import claims
cfg = interpbook.start("good", "01_good", scale=scale, seed=seed, device=device,
                       scales={"smoke": {}, "ci": {}, "full": {}})
claims.check("C1", "one is one", value=1.0, op=">=", threshold=1.0)
interpbook.finish()
'''

BAD = '''\
# %% tags=["parameters"]
scale = "ci"
seed = 0
device = "auto"

# %%
raise RuntimeError("boom: this notebook is broken on purpose")
'''

SLOW = '''\
# %% tags=["parameters"]
scale = "ci"
seed = 0
device = "auto"

# %%
import time
time.sleep(60)
'''


def make_repo(tmp_path: Path, notebooks: dict[str, str]) -> Path:
    root = tmp_path / "repo"
    (root / "notebooks").mkdir(parents=True)
    (root / "_toc.yml").write_text("format: jb-book\nroot: intro\n")
    for key, source in notebooks.items():
        chapter, name = key.split("/")
        (root / "notebooks" / chapter).mkdir(exist_ok=True)
        (root / "notebooks" / chapter / f"{name}.py").write_text(textwrap.dedent(source))
    return root


def jobs_for(root, chapters=None, scale="ci", **kw):
    return runner.plan(chapters, scale, root=root, build=root / "build", **kw)


def test_keep_going_summary_and_atomic_outputs(tmp_path, capsys):
    root = make_repo(tmp_path, {"good/01_good": GOOD, "bad/01_bad": BAD})
    last_good = root / "build" / "executed" / "notebooks" / "bad" / "01_bad.ipynb"
    last_good.parent.mkdir(parents=True)
    last_good.write_text("last good output")
    results = runner.run(jobs_for(root))
    status = {r.key: r.status for r in results}
    assert status == {"good/01_good": "ok", "bad/01_bad": "failed"}
    assert "boom" in next(r.error for r in results if r.key == "bad/01_bad")
    assert last_good.read_text() == "last good output", "a failed run must not replace the last good output"
    assert (root / "build" / "failed" / "bad" / "01_bad.ipynb").is_file()
    executed = root / "build" / "executed" / "notebooks"
    assert (executed / "good" / "01_good.ipynb").is_file()
    assert not [p for p in executed.rglob("*.running.ipynb")], "no partial outputs left where the book reads"
    out = capsys.readouterr().out
    assert "FAILED" in out and "bad/01_bad: RuntimeError: boom" in out and "1/1" in out
    record = json.loads((root / "build" / "results" / "ci" / "_runs.json").read_text())
    assert record["bad/01_bad"]["status"] == "failed"


def test_cache_skips_unchanged_and_reruns_on_change(tmp_path):
    root = make_repo(tmp_path, {"good/01_good": GOOD})
    assert [r.status for r in runner.run(jobs_for(root))] == ["ok"]
    t0 = time.time()
    assert [r.status for r in runner.run(jobs_for(root))] == ["cached"]
    assert time.time() - t0 < 10
    assert [r.status for r in runner.run(jobs_for(root), force=True)] == ["ok"]
    assert [r.status for r in runner.run(jobs_for(root, seed=1))] == ["ok"], "new parameters re-execute"
    source = root / "notebooks" / "good" / "01_good.py"
    source.write_text(source.read_text() + "\n# an edit\n")
    assert [r.status for r in runner.run(jobs_for(root, seed=1))] == ["ok"], "an edited source re-executes"


def test_digest_depends_on_scale_and_library(tmp_path, monkeypatch):
    root = make_repo(tmp_path, {"good/01_good": GOOD})
    ci, smoke = jobs_for(root)[0], jobs_for(root, scale="smoke")[0]
    assert ci.digest != smoke.digest
    copy = tmp_path / "pkg"
    shutil.copytree(paths.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(paths, "PACKAGE_DIR", copy)
    before = runner.library_digest()
    (copy / "claims.py").write_text((copy / "claims.py").read_text() + "\n# edit\n")
    assert runner.library_digest() != before, "editing any file of the package changes the digest"
    assert jobs_for(root)[0].digest != ci.digest or before != runner.library_digest()


def test_timeout_kills_and_quarantines(tmp_path):
    root = make_repo(tmp_path, {"slow/01_slow": SLOW})
    [result] = runner.run(jobs_for(root, timeout_s=8))
    assert result.status == "timeout" and "8 s" in result.error
    executed = root / "build" / "executed" / "notebooks" / "slow"
    assert not list(executed.glob("*.ipynb")) and not list(executed.glob(".*.ipynb"))


def test_unknown_chapter_and_scale(tmp_path):
    root = make_repo(tmp_path, {"good/01_good": GOOD})
    with pytest.raises(runner.UsageError, match="unknown chapter 'nope'; valid chapters: good"):
        jobs_for(root, ["nope"])
    with pytest.raises(runner.UsageError, match="unknown scale 'bogus'; valid scales: smoke, ci, full"):
        jobs_for(root, scale="bogus")
    with pytest.raises(runner.UsageError, match="--jobs must be at least 1"):
        runner.LocalExecutor(0)


@pytest.mark.parametrize(
    "args, message",
    [(["run", "--scale", "bogus"], "error: unknown scale 'bogus'; valid scales: smoke, ci, full"),
     (["chapter", "nope"], "error: unknown chapter 'nope'; valid chapters:"),
     (["run", "--device", "tpu"], "error: unknown device 'tpu'; allowed: auto, cpu")],
)
def test_cli_errors_are_one_line(args, message):
    env = dict(os.environ, INTERPBOOK_ROOT=str(paths.repo_root()))
    proc = subprocess.run([sys.executable, "-m", "interpbook", *args], capture_output=True, text=True, env=env)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith(message) and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stdout == ""


def test_cli_list_names_the_chapters():
    proc = subprocess.run([sys.executable, "-m", "interpbook", "list"], capture_output=True, text=True,
                          cwd=paths.repo_root())
    assert proc.returncode == 0 and "adv-subspace-dim: 01_subspace_pgd" in proc.stdout


SEEDED = '''\
# %% tags=["parameters"]
scale = "ci"
seed = 0
device = "auto"

# %%
import matplotlib.pyplot as plt
import interpbook
from interpbook import claims, figures
cfg = interpbook.start("seeded", "01_seeded", scale=scale, seed=seed, device=device,
                       scales={"smoke": {}, "ci": {}, "full": {}})
figures.save(plt.figure(), "fig", show=False)
claims.check("C1", "holds for seed 0 only", value=float(seed == 0), op=">=", threshold=1.0)
interpbook.finish()
'''

MIDWAY = '''\
# %% tags=["parameters"]
scale = "ci"
seed = 0
device = "auto"

# %%
import matplotlib.pyplot as plt
import interpbook
from interpbook import figures
cfg = interpbook.start("midway", "01_midway", scale=scale, seed=seed, device=device,
                       scales={"smoke": {}, "ci": {}, "full": {}})
figures.save(plt.figure(), "before", show=False)
raise RuntimeError("boom mid-way")
'''


def test_a_failed_run_is_never_served_from_the_cache_and_missing_outputs_rerun(tmp_path):
    root = make_repo(tmp_path, {"seeded/01_seeded": SEEDED})
    assert [r.status for r in runner.run(jobs_for(root, seed=0))] == ["ok"]
    assert [r.status for r in runner.run(jobs_for(root, seed=1))] == ["failed"]  # results/figures now seed 1's
    assert [r.status for r in runner.run(jobs_for(root, seed=0))] == ["ok"], "must re-execute, not 'cached'"
    assert json.loads((root / "build" / "results" / "ci" / "seeded" / "01_seeded.json").read_text())["seed"] == 0
    shutil.rmtree(root / "build" / "figures" / "seeded")
    assert [r.status for r in runner.run(jobs_for(root, seed=0))] == ["ok"], "deleted figures are regenerated"
    assert (root / "build" / "figures" / "seeded" / "fig.png").is_file()


def test_a_notebook_failing_half_way_installs_none_of_its_figures(tmp_path, capsys):
    root = make_repo(tmp_path, {"midway/01_midway": MIDWAY})
    [result] = runner.run(jobs_for(root))
    assert result.status == "failed"
    assert not (root / "build" / "figures" / "midway").exists()
    assert (root / "build" / "failed" / "midway" / "figures" / "before.png").is_file()
    assert not any((root / "build" / ".staging").rglob("*.png")), "nothing left staged"
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("midway"))
    assert row.split()[-1] == "—"


def test_timeout_must_be_positive(tmp_path):
    root = make_repo(tmp_path, {"good/01_good": GOOD})
    with pytest.raises(runner.UsageError, match="--timeout must be a positive"):
        jobs_for(root, timeout_s=0)


def test_ctrl_c_stops_the_running_notebooks(tmp_path):
    import signal

    root = make_repo(tmp_path, {"slow/01_slow": SLOW, "zlater/01_later": GOOD})
    env = dict(os.environ, INTERPBOOK_BUILD=str(root / "build"))
    proc = subprocess.Popen([sys.executable, "-m", "interpbook", "run", "--scale", "ci", "--jobs", "1"], cwd=root,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(8)  # the slow notebook's kernel is running by now
    t0 = time.time()
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    assert time.time() - t0 < 30, "the 60 s notebook was killed, not waited for"
    assert "interrupted" in out
    assert not (root / "build" / "executed" / "notebooks" / "zlater").exists(), "nothing else was started"
    assert not list((root / "build").rglob("*.running.ipynb"))
