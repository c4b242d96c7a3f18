"""One notebook run: its chapter, scale, seed and device, and the results file it leaves behind.

A chapter notebook opens with ``cfg = interpbook.start(...)`` and closes with ``interpbook.finish()``.
``start`` validates the papermill parameters, seeds every generator and picks the settings of the
requested scale; ``finish`` writes ``build/results/<scale>/<chapter>/<notebook>.json`` (claims, runtime,
versions, commit) and then raises if a claim expected to hold did not — after results and figures exist,
so a red run still leaves its evidence.
"""

from __future__ import annotations

import json
import os
import platform
import random
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from interpbook import paths

DEVICES = ("auto", "cpu", "cuda", "cuda:<index>", "mps")


class Settings(dict):
    """The chosen scale's settings plus ``scale``, ``seed``, ``device``; keys readable as attributes."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"no setting {name!r}; settings are: {', '.join(self)}") from None


@dataclass
class Run:
    chapter: str
    notebook: str
    scale: str
    seed: int
    device: str
    settings: dict
    title: str | None = None
    paper: str | None = None
    started: float = field(default_factory=time.time)
    claims: list = field(default_factory=list)
    figures: list = field(default_factory=list)


_CURRENT: Run | None = None


def current() -> Run | None:
    """The run started by the last :func:`start` in this process, if any."""
    return _CURRENT


def resolve_device(device: str):
    """Turn ``"auto" | "cpu" | "cuda" | "cuda:N" | "mps"`` into a ``torch.device``, or say what is allowed."""
    import torch

    name = str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    ok = name in ("cpu", "cuda", "mps") or (name.startswith("cuda:") and name[5:].isdigit())
    if not ok:
        raise ValueError(f"unknown device {device!r}; allowed: {', '.join(DEVICES)}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available here; use 'auto' or 'cpu'")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device 'mps' requested but MPS is not available here; use 'auto' or 'cpu'")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) generators."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def start(
    chapter: str,
    notebook: str,
    *,
    scale: str,
    seed: int,
    device: str,
    scales: dict[str, dict],
    title: str | None = None,
    paper: str | None = None,
) -> Settings:
    """Begin a notebook run and return the settings of ``scale``.

    Args:
        chapter: the chapter slug (its folder under ``notebooks/``).
        notebook: the notebook's file stem, e.g. ``"01_subspace_pgd"``.
        scale, seed, device: the papermill parameters.
        scales: the notebook's visible ``SCALES`` table, one settings dict per scale.
        title, paper: the paper's title and BibTeX key, shown on the status page.
    """
    global _CURRENT
    from interpbook import SCALES

    if scale not in scales:
        raise ValueError(f"unknown scale {scale!r}; valid scales: {', '.join(scales)}")
    missing = [s for s in SCALES if s not in scales]
    if missing:
        raise ValueError(f"the SCALES table must define {', '.join(SCALES)}; missing {', '.join(missing)}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    dev = resolve_device(device)
    seed_everything(seed)
    settings = Settings(scales[scale], scale=scale, seed=seed, device=dev)
    _CURRENT = Run(chapter, notebook, scale, seed, str(dev), dict(scales[scale]), title, paper)
    import shutil

    from interpbook import figures

    shutil.rmtree(figures.staging_dir(chapter, notebook), ignore_errors=True)  # an interrupted run's leftovers
    return settings


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=10, cwd=paths.repo_root()
        )
    except (OSError, subprocess.SubprocessError, FileNotFoundError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def provenance() -> dict:
    """Commit, dirtiness and package versions, for results files and figure metadata."""
    import numpy
    import torch

    from interpbook import __version__

    # untracked files count where they can change a result (a new module, an uncommitted notebook)
    status = _git("status", "--porcelain", "--untracked-files=all", "--", "src", "notebooks")
    return {
        "commit": _git("rev-parse", "--short=10", "HEAD") or "unknown",
        "dirty": bool(status) if status is not None else None,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": numpy.__version__,
            "interpbook": __version__,
        },
    }


def results_path(run: Run) -> Path:
    return paths.build_dir() / "results" / run.scale / run.chapter / f"{run.notebook}.json"


def write_json_atomic(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=_jsonable) + "\n")
    os.replace(tmp, path)


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def finish() -> dict:
    """Write the results file, show the claims table, and raise if a ``holds`` claim failed.

    At ``smoke`` scale claims are recorded but never raise: that scale only proves the code runs.
    """
    from interpbook import claims

    run = _CURRENT
    if run is None:
        raise RuntimeError("interpbook.finish() called before interpbook.start(...)")
    payload = {
        "schema": 1,
        "chapter": run.chapter,
        "notebook": run.notebook,
        "title": run.title,
        "paper": run.paper,
        "scale": run.scale,
        "seed": run.seed,
        "device": run.device,
        "started": datetime.fromtimestamp(run.started, timezone.utc).isoformat(timespec="seconds"),
        "runtime_s": round(time.time() - run.started, 2),
        **provenance(),
        "settings": run.settings,
        "figures": list(run.figures),
        "claims": [c.as_dict() for c in run.claims],
    }
    from interpbook import figures

    figures.install_staged(run.chapter, run.notebook)  # figures first: a failing holds claim still leaves them
    write_json_atomic(results_path(run), payload)
    claims.show(run.claims)
    if run.scale == "smoke":  # smoke only proves the code path runs: its numbers carry no verdict
        print("smoke scale: claims recorded, not enforced")
    else:
        claims.raise_if_failed(run.claims)
    return payload
