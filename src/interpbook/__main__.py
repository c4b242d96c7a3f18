"""Command line: ``python -m interpbook run|chapter|list|status`` (also installed as ``interpbook``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from interpbook import SCALES, paths, runner


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="interpbook", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    def add_run_options(sp):
        sp.add_argument("--scale", default="ci", help=f"one of {', '.join(SCALES)} (default ci)")
        sp.add_argument("--jobs", type=int, default=2, help="notebooks executed in parallel (default 2)")
        sp.add_argument("--force", action="store_true", help="re-execute even if nothing changed")
        sp.add_argument("--timeout", type=float, default=None, help="seconds per notebook")
        sp.add_argument("--seed", type=int, default=0)
        sp.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")

    r = sub.add_parser("run", help="execute notebooks (all chapters, or those named)")
    r.add_argument("chapters", nargs="*", metavar="CHAPTER")
    add_run_options(r)
    c = sub.add_parser("chapter", help="execute one chapter and say where its page and figures are")
    c.add_argument("chapter", metavar="CHAPTER")
    add_run_options(c)
    sub.add_parser("list", help="list chapters and their notebooks")
    sub.add_parser("status", help="regenerate the status page from the results files")
    return p


def _check_device(device: str) -> None:
    from interpbook.session import DEVICES

    ok = device in ("auto", "cpu", "cuda", "mps") or (device.startswith("cuda:") and device[5:].isdigit())
    if not ok:
        raise runner.UsageError(f"unknown device {device!r}; allowed: {', '.join(DEVICES)}")


def _write_status(root: Path) -> Path:
    from interpbook.status import main_status

    return main_status(root)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        root = paths.repo_root()
        if args.command == "list":
            for chapter, sources in runner.discover(root).items():
                print(f"{chapter}: {', '.join(s.stem for s in sources)}")
            return 0
        if args.command == "status":
            print(f"status page: {_write_status(root)}")
            return 0
        _check_device(args.device)
        chapters = [args.chapter] if args.command == "chapter" else args.chapters
        jobs = runner.plan(chapters, args.scale, root=root, seed=args.seed, device=args.device,
                           timeout_s=args.timeout)
        results = runner.run(jobs, force=args.force, executor=runner.LocalExecutor(args.jobs))
    except (runner.UsageError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the running notebooks were stopped; no summary", file=sys.stderr)
        return 130
    _write_status(root)
    failed = [r for r in results if r.status not in ("ok", "cached")]
    if args.command == "chapter":
        build = paths.build_dir(root)
        print(f"\nexecuted notebooks: {build / 'executed' / 'notebooks' / args.chapter}/")
        print(f"figures:            {build / 'figures' / args.chapter}/")
        print(f"results:            {build / 'results' / args.scale / args.chapter}/")
        page = build / "_build" / "html" / "build" / "executed" / "notebooks" / args.chapter
        print(f"page (after `make book`): {page}/")
    if failed:
        print(f"\n{len(failed)} of {len(results)} notebook(s) failed.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
