"""How long each chapter takes to run, per profile: the instructor page's time table.

Run from the repository root, on an otherwise idle machine:

    .venv/bin/python benchmarks/chapter_times.py --profiles smoke laptop [--chapters 02_why_schedule ...]

It executes each chapter notebook of ``_toc.yml`` top to bottom (as the book build and a reader's
"Run all" do: working directory ``book/``, ``LRLAB_PROFILE`` set) and writes one row per chapter and
profile to ``book/results/chapter_times.csv``: the wall seconds, whether it ran (``ok``) or why not
(for example a dataset that is not on this machine, in which case no time is recorded), the device,
torch, the date and the commit. Rows for other chapters and profiles are kept, so the table can be
filled in several sittings; the file is written atomically after every chapter. The datasets are
looked up in ``$LRLAB_DATA``, else in ``../shared/data`` beside the checkout where it exists.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from lrlab.course import profiles, provenance, results  # noqa: E402

OUT = REPO / "book" / "results" / "chapter_times.csv"
FIELDS = ("chapter", "profile", "seconds", "status", "device", "torch", "date", "git")


def chapters() -> list:
    """The chapter notebooks in the order of ``_toc.yml`` (the instructor page, which shows this table, aside)."""
    names = re.findall(r"^\s*-?\s*(?:root|file):\s*book/(\S+)", (REPO / "_toc.yml").read_text(), re.M)
    return [n for n in names if (REPO / "book" / f"{n}.ipynb").is_file() and n != "instructor"]


def read(path: Path = OUT) -> list:
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def write(rows: list, path: Path = OUT) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    order = {name: i for i, name in enumerate(chapters())}
    for row in sorted(rows, key=lambda r: (profiles.PROFILES.index(r["profile"]), order.get(r["chapter"], 99))):
        writer.writerow(row)
    results.write_atomic(path, buf.getvalue())


def _plain(text: str) -> str:
    """``text`` without the terminal colour codes (ANSI escapes) of IPython's tracebacks."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def run_chapter(name: str, profile: str) -> tuple:
    """(seconds or None, status) of executing ``book/<name>.ipynb`` in ``profile``."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(REPO / "book" / f"{name}.ipynb", as_version=4)
    os.environ["LRLAB_PROFILE"] = profile
    client = NotebookClient(nb, timeout=None, kernel_name="python3",
                            resources={"metadata": {"path": str(REPO / "book")}})
    start = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as err:
        last = [line for line in _plain(str(err)).splitlines() if line.strip()][-1]
        missing = re.match(r"MissingDataError: ([^:]+):", last)
        if missing:  # lrlab's message names the dataset first
            return None, f"{missing.group(1)} not on the measuring machine"
        return None, f"failed: {last[:200]}"
    return time.perf_counter() - start, "ok"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", nargs="+", default=["smoke"], choices=profiles.PROFILES)
    parser.add_argument("--chapters", nargs="+", default=None, help="notebook names (default: all of _toc.yml)")
    args = parser.parse_args(argv)
    names = args.chapters or chapters()
    unknown = sorted(set(names) - set(chapters()))
    if unknown:
        raise SystemExit(f"error: not chapters of _toc.yml: {', '.join(unknown)}")
    shared = REPO.parent / "shared" / "data"
    if "LRLAB_DATA" not in os.environ and shared.is_dir():
        os.environ["LRLAB_DATA"] = str(shared)  # the datasets beside the checkout, as the tests use them
    rows = read()
    device = provenance.device_text(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    commit = provenance.git_commit()
    for profile in args.profiles:
        for name in names:
            seconds, status = run_chapter(name, profile)
            rows = [r for r in rows if (r["chapter"], r["profile"]) != (name, profile)]
            rows.append({"chapter": name, "profile": profile,
                         "seconds": "" if seconds is None else f"{seconds:.1f}", "status": status,
                         "device": device, "torch": torch.__version__,
                         "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "git": commit})
            write(rows)
            print(f"{profile:7s} {name:28s} {status if seconds is None else f'{seconds:7.1f} s'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
