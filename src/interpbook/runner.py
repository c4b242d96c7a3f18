"""Execute chapter notebooks: jupytext source -> papermill -> ``build/executed/notebooks/<slug>/<nb>.ipynb``.

The runner plans one :class:`Job` per notebook, skips those whose content hash (notebook source, every
file of ``src/interpbook``, scale, parameters) matches the last successful run, hands the rest to an
executor, prints progress as it goes, and ends with a summary table and a non-zero exit if anything
failed. Each job runs :func:`execute_job` in its own process with ``OMP_NUM_THREADS=1``; its output is
written to a hidden temporary file and renamed into place only on success, so the book never reads a
half-written or broken notebook (a failed one is kept under ``build/failed/`` for inspection).

Executors are swappable: anything with ``map(jobs, on_start, on_done) -> list[JobResult]`` works.
:class:`LocalExecutor` runs subprocesses on this machine; a cluster executor (e.g. Slurm through
``submitit``) only has to call :func:`execute_job` on a worker and hand back its :class:`JobResult`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from interpbook import SCALES, paths

RUNNER_VERSION = "1"  # bump to invalidate every cached execution
DEFAULT_TIMEOUT_S = {"smoke": 300, "ci": 900, "full": 6 * 3600}


class UsageError(ValueError):
    """Bad input from the command line: unknown chapter, scale, device or option value."""


@dataclass
class Job:
    chapter: str
    notebook: str
    source: str  # path of the jupytext .py
    output: str  # where the executed .ipynb goes
    build: str  # the build folder (results, figures)
    root: str  # repository root
    scale: str
    parameters: dict
    timeout_s: float
    digest: str = ""

    @property
    def key(self) -> str:
        return f"{self.chapter}/{self.notebook}"

    @property
    def hash_file(self) -> Path:
        out = Path(self.output)
        return out.with_name(f".{out.stem}.hash")


@dataclass
class JobResult:
    key: str
    status: str  # ok | cached | failed | timeout
    seconds: float
    error: str | None = None


def discover(root: Path) -> dict[str, list[Path]]:
    """Chapters (folders of ``notebooks/``) and their jupytext sources, in reading order."""
    chapters = {}
    for folder in sorted((root / "notebooks").iterdir()):
        if folder.is_dir() and not folder.name.startswith((".", "_")):
            sources = sorted(p for p in folder.glob("*.py") if not p.name.startswith("_"))
            if sources:
                chapters[folder.name] = sources
    return chapters


def library_digest() -> str:
    """Hash of every source file of the package, so any library edit re-executes the book."""
    h = hashlib.sha256()
    for path in sorted(paths.PACKAGE_DIR.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            h.update(path.relative_to(paths.PACKAGE_DIR).as_posix().encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def job_digest(job: Job, library: str) -> str:
    h = hashlib.sha256()
    for part in (RUNNER_VERSION, library, job.scale, json.dumps(job.parameters, sort_keys=True)):
        h.update(part.encode() + b"\0")
    h.update(Path(job.source).read_bytes())
    return h.hexdigest()


def plan(
    chapters: list[str] | None,
    scale: str,
    *,
    root: Path | None = None,
    build: Path | None = None,
    seed: int = 0,
    device: str = "auto",
    timeout_s: float | None = None,
) -> list[Job]:
    """One job per notebook of the requested chapters (all when ``chapters`` is empty)."""
    if scale not in SCALES:
        raise UsageError(f"unknown scale {scale!r}; valid scales: {', '.join(SCALES)}")
    if timeout_s is not None and not timeout_s > 0:
        raise UsageError(f"--timeout must be a positive number of seconds, got {timeout_s}")
    root = root or paths.repo_root()
    build = build or paths.build_dir(root)
    found = discover(root)
    unknown = [c for c in chapters or [] if c not in found]
    if unknown:
        raise UsageError(
            f"unknown chapter {', '.join(map(repr, unknown))}; valid chapters: {', '.join(found) or '(none)'}"
        )
    library = library_digest()
    jobs = []
    for chapter in chapters or list(found):
        for source in found[chapter]:
            job = Job(
                chapter=chapter,
                notebook=source.stem,
                source=str(source),
                output=str(build / "executed" / "notebooks" / chapter / f"{source.stem}.ipynb"),
                build=str(build),
                root=str(root),
                scale=scale,
                parameters={"scale": scale, "seed": seed, "device": device},
                timeout_s=timeout_s or DEFAULT_TIMEOUT_S[scale],
            )
            job.digest = job_digest(job, library)
            jobs.append(job)
    return jobs


def results_file(job: Job) -> Path:
    return Path(job.build) / "results" / job.scale / job.chapter / f"{job.notebook}.json"


def is_cached(job: Job) -> bool:
    """The executed notebook, its results and every figure they list exist, from a run with these inputs."""
    if not (Path(job.output).is_file() and job.hash_file.is_file()
            and job.hash_file.read_text().strip() == job.digest and results_file(job).is_file()):
        return False
    try:
        listed = json.loads(results_file(job).read_text()).get("figures", [])
    except (OSError, ValueError):
        return False
    figures = Path(job.build) / "figures" / job.chapter
    return all((figures / name).is_file() and (figures / name).with_suffix(".svg").is_file() for name in listed)


def _forget(job: Job) -> None:
    """After a failed run: the outputs on disk no longer belong to the cached inputs, so nothing is cached,
    and staged figures go where failed runs are kept."""
    job.hash_file.unlink(missing_ok=True)
    from interpbook.figures import staging_dir

    staged = staging_dir(job.chapter, job.notebook, Path(job.build))
    if staged.is_dir():
        kept = Path(job.build) / "failed" / job.chapter / "figures"
        shutil.rmtree(kept, ignore_errors=True)
        kept.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, kept)


def _kernel_env(job: Job) -> dict:
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        INTERPBOOK_ROOT=job.root,
        INTERPBOOK_BUILD=job.build,
        HF_HUB_OFFLINE=env.get("HF_HUB_OFFLINE", "1" if job.scale != "full" else "0"),
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    env.pop("MPLBACKEND", None)  # a forced Agg backend would strip inline figures from the page
    return env


def execute_job(job: Job) -> JobResult:
    """Execute one notebook with papermill; install its output only if it succeeded.

    Runs in the worker process (a local subprocess or a cluster job); the environment variables of
    :func:`_kernel_env` must already be set there, since the kernel inherits them.
    """
    import jupytext
    import papermill

    t0 = time.time()
    out = Path(job.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.running.ipynb")
    nb = jupytext.read(job.source)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata.setdefault("language_info", {"name": "python"})
    try:
        papermill.execute_notebook(
            nb,
            str(tmp),
            parameters=job.parameters,
            cwd=str(Path(job.source).parent),
            kernel_name="python3",
            progress_bar=False,
            log_output=False,
        )
    except Exception as exc:  # papermill raises PapermillExecutionError; a dead kernel raises others
        failed = Path(job.build) / "failed" / job.chapter / f"{job.notebook}.ipynb"
        failed.parent.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            os.replace(tmp, failed)
        _forget(job)
        return JobResult(job.key, "failed", time.time() - t0, _error_line(exc))
    os.replace(tmp, out)
    job.hash_file.write_text(job.digest + "\n")
    return JobResult(job.key, "ok", time.time() - t0)


def _quarantine_partial(job: Job) -> None:
    """Move a killed run's partial output out of the folder the book reads."""
    out = Path(job.output)
    for partial in out.parent.glob(f".{out.stem}.*.running.ipynb"):
        failed = Path(job.build) / "failed" / job.chapter / f"{job.notebook}.ipynb"
        failed.parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial, failed)


def _error_line(exc: Exception) -> str:
    ename, evalue = getattr(exc, "ename", type(exc).__name__), getattr(exc, "evalue", str(exc))
    text = f"{ename}: {evalue}".strip()
    return text if len(text) < 2000 else text[:2000] + " ..."


class Executor(Protocol):
    def map(
        self, jobs: list[Job], on_start: Callable[[Job], None], on_done: Callable[[Job, JobResult], None]
    ) -> list[JobResult]: ...


class LocalExecutor:
    """Run jobs as subprocesses of this machine, ``workers`` at a time, each with a wall-clock limit."""

    def __init__(self, workers: int = 2, heartbeat_s: float = 30.0):
        if workers < 1:
            raise UsageError(f"--jobs must be at least 1, got {workers}")
        self.workers = workers
        self.heartbeat_s = heartbeat_s
        self._running: dict[str, tuple[Job, subprocess.Popen]] = {}
        self._lock = threading.Lock()
        self._stopping = False

    def _run_one(self, job: Job) -> JobResult:
        t0 = time.time()
        with tempfile.TemporaryDirectory(prefix="interpbook-job-") as tmp:
            spec, result = Path(tmp) / "job.json", Path(tmp) / "result.json"
            spec.write_text(json.dumps(asdict(job)))
            with self._lock:
                if self._stopping:
                    return JobResult(job.key, "failed", 0.0, "Interrupted: not started")
                proc = subprocess.Popen(
                    [sys.executable, "-m", "interpbook.runner", str(spec), str(result)],
                    env=_kernel_env(job),
                    start_new_session=True,  # so a timeout can kill the kernel too (and Ctrl-C does not reach it)
                )
                self._running[job.key] = (job, proc)
            try:
                proc.wait(timeout=job.timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                _quarantine_partial(job)
                _forget(job)
                return JobResult(job.key, "timeout", time.time() - t0,
                                 f"Timeout: exceeded {job.timeout_s:.0f} s")
            finally:
                with self._lock:
                    self._running.pop(job.key, None)
            if result.is_file():
                return JobResult(**json.loads(result.read_text()))
            _forget(job)
            return JobResult(job.key, "failed", time.time() - t0,
                             f"WorkerDied: runner process exited with code {proc.returncode}")

    def map(self, jobs, on_start, on_done):
        results: dict[str, JobResult] = {}
        started: dict[str, float] = {}
        lock = threading.Lock()

        def task(job):
            with lock:
                started[job.key] = time.time()
            on_start(job)
            return self._run_one(job)

        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            futures = {pool.submit(task, job): job for job in jobs}
            pending = set(futures)
            try:
                self._wait_all(futures, pending, results, started, lock, on_done)
            except KeyboardInterrupt:
                self.stop()
                raise
        return [results[j.key] for j in jobs]

    def stop(self) -> None:
        """Start no more jobs and kill the running ones (their kernels included); their partial outputs are
        moved out of the book's folders and their cache entries forgotten."""
        with self._lock:
            self._stopping = True
            running = list(self._running.values())
        for job, proc in running:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            _quarantine_partial(job)
            _forget(job)
        print(f"\ninterrupted: stopped {len(running)} running notebook(s); nothing else was started", flush=True)

    def _wait_all(self, futures, pending, results, started, lock, on_done) -> None:
        while pending:
            done, pending = wait(pending, timeout=self.heartbeat_s, return_when=FIRST_COMPLETED)
            for fut in done:
                job = futures[fut]
                results[job.key] = fut.result()
                on_done(job, results[job.key])
            if pending and not done:
                now = time.time()
                with lock:
                    running = [f"{k} ({now - t:.0f} s)" for k, t in started.items() if k not in results]
                print(f"  ... still running: {', '.join(running)}", flush=True)


def _mtime(path: Path) -> float | None:
    return path.stat().st_mtime_ns if path.is_file() else None


def _claims_summary(job: Job, stale_mtime: float | None = None) -> str:
    path = results_file(job)
    if not path.is_file() or (stale_mtime is not None and _mtime(path) == stale_mtime):
        return "—"  # no results, or only an earlier run's (this run failed before writing any)
    claims = json.loads(path.read_text()).get("claims", [])
    return f"{sum(c['held'] for c in claims)}/{len(claims)}"


def _record(jobs: list[Job], results: list[JobResult]) -> None:
    if not jobs:
        return
    path = Path(jobs[0].build) / "results" / jobs[0].scale / "_runs.json"
    record = json.loads(path.read_text()) if path.is_file() else {}
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    for r in results:
        if r.status == "cached" and r.key in record and record[r.key].get("status") == "ok":
            continue  # the run that made the cached outputs is the one on record
        if r.status == "cached":  # outputs from an earlier successful run with the same inputs
            record[r.key] = {"status": "ok", "seconds": 0.0, "error": None, "finished": now, "cached": True}
        else:
            record[r.key] = {"status": r.status, "seconds": round(r.seconds, 2), "error": r.error, "finished": now}
    from interpbook.session import write_json_atomic

    write_json_atomic(path, record)


def summary_table(jobs: list[Job], results: list[JobResult], before: dict[str, float | None] | None = None) -> str:
    """The run's table; ``before`` maps job keys to their results file's mtime before the run, so that a
    failed row does not show an earlier run's claims."""
    rows = [("chapter", "notebook", "status", "seconds", "claims held")]
    for job, r in zip(jobs, results):
        status = r.status if r.status in ("ok", "cached") else r.status.upper()
        stale = (before or {}).get(job.key) if r.status not in ("ok", "cached") else None
        rows.append((job.chapter, job.notebook, status, f"{r.seconds:.1f}", _claims_summary(job, stale)))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for job, r in zip(jobs, results):
        if r.error:
            lines.append(f"{job.key}: {r.error}")
    return "\n".join(lines)


def run(jobs: list[Job], *, force: bool = False, executor: Executor | None = None) -> list[JobResult]:
    """Execute ``jobs`` (skipping cached ones unless ``force``), print progress and a summary."""
    executor = executor or LocalExecutor()
    results: dict[str, JobResult] = {}
    todo = []
    for job in jobs:
        if not force and is_cached(job):
            results[job.key] = JobResult(job.key, "cached", 0.0)
            print(f"[cached] {job.key} (unchanged since its last successful {job.scale} run)", flush=True)
        else:
            todo.append(job)
    n, t_all = len(todo), time.time()
    before = {job.key: _mtime(results_file(job)) for job in todo}
    counter = iter(range(1, n + 1))

    def on_start(job):
        print(f"[start ] {job.key} at scale {job.scale}", flush=True)

    def on_done(job, r):
        mark = {"ok": "done  ", "failed": "FAILED", "timeout": "TIMEOUT"}.get(r.status, r.status)
        print(f"[{mark}] {job.key} in {r.seconds:.1f} s ({next(counter)}/{n}, "
              f"{time.time() - t_all:.0f} s elapsed)", flush=True)

    for r in executor.map(todo, on_start, on_done) if todo else []:
        results[r.key] = r
    ordered = [results[j.key] for j in jobs]
    _record(jobs, ordered)
    print("\n" + summary_table(jobs, ordered, before), flush=True)
    return ordered


def _worker_main(spec: str, result: str) -> None:
    job = Job(**json.loads(Path(spec).read_text()))
    r = execute_job(job)
    Path(result).write_text(json.dumps(asdict(r)))


if __name__ == "__main__":
    _worker_main(sys.argv[1], sys.argv[2])
