"""Before a book build: the datasets each profile needs, on disk (``python -m lrlab.course data``).

``make book`` runs this first, so a missing or damaged file stops the build with lrlab's message,
which names the file and the fix, before any notebook runs.
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence

from ..data import DATASETS, CorruptDataError, MissingDataError, PathLike, data_root, files_present, load_dataset_tensors
from .profiles import FULL, PROFILES, get_profile

__all__ = ["ensure_datasets", "main"]


def ensure_datasets(profile: str, root: Optional[PathLike] = None) -> dict:
    """Make sure the datasets the book's chapters read in ``profile`` are on disk; return ``{name: what}``.

    ``full`` and ``laptop`` read the real Fashion-MNIST, MNIST and CIFAR-10: each is downloaded
    through torchvision (with a progress bar) where its files are missing, then read once to check
    it. A dataset that cannot be had raises :class:`MissingDataError` (or :class:`CorruptDataError`)
    with the message that says how to fix it, before any notebook runs. ``smoke`` never downloads:
    it reports which real files are present and which chapters will use the synthetic stand-in.
    """
    if profile not in PROFILES:
        raise ValueError(f"profile={profile!r} is not a profile; use one of {', '.join(map(repr, PROFILES))}")
    report = {}
    for name in sorted({setting.dataset for setting in FULL.values()}):
        spec = DATASETS[name]
        if profile == "smoke":
            report[name] = ("real files" if files_present(name, root) else "synthetic stand-in (no files, no download)")
            continue
        load_dataset_tensors(name, root, download=True)
        report[name] = f"real files in {data_root(root) / spec.folder}"
    return report


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m lrlab.course data [--profile P] [--root DIR]``: :func:`ensure_datasets`, for ``make book``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m lrlab.course data",
                                     description="Make sure the datasets of a profile are on disk before a book build.")
    parser.add_argument("--profile", default=None, help="full, laptop or smoke (default: $LRLAB_PROFILE, else full)")
    parser.add_argument("--root", default=None, help="the datasets' folder (default: $LRLAB_DATA, else ~/.cache/lrlab)")
    args = parser.parse_args(argv)
    try:
        profile = args.profile or get_profile()
        report = ensure_datasets(profile, args.root)
    except (MissingDataError, CorruptDataError, ValueError) as err:
        print(f"lrlab: the book cannot be built: {err}", file=sys.stderr)
        return 1
    for name, what in report.items():
        print(f"lrlab: {DATASETS[name].title} for the '{profile}' profile: {what}")
    return 0

