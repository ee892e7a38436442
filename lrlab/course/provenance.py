"""Where and how each reference run was made: the provenance entries of ``<study>.provenance.json``.

An entry records the device (and :func:`cpu_id`, finer than a cloud's model name), the versions of
Python, torch and lrlab, the commit of the code (:func:`git_commit`), the profile and data, when the run
started and finished, its wall time, the command, and why it stopped if it stopped early. Two runs repeat
bit for bit only where the CPU id, the torch version and the number of threads are the same.
"""

from __future__ import annotations

import datetime as _dt
import functools
import os
import platform
import subprocess
from pathlib import Path
from typing import Optional

import torch

from .. import __version__

__all__ = ["entry", "now", "git_commit", "cpu_id", "device_text", "same_machine"]


def now() -> str:
    """This moment, with its time zone, to the second (ISO 8601)."""
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def entry(device_text: str, cfg, label: str, started: str, wall_seconds: float, command: str,
          stopped: Optional[str], **extra) -> dict:
    """One finished run's provenance entry (``cfg``: its :class:`~lrlab.course.Experiment`; ``extra``: how it
    ran, e.g. its sessions), finished now."""
    return {"device": device_text, "cpu": cpu_id(), "python": platform.python_version(), "torch": torch.__version__,
            "lrlab": __version__, "git": git_commit(), "profile": cfg.profile, "data": label, "started": started,
            "finished": now(), "wall_seconds": round(float(wall_seconds), 2), **extra, "command": command,
            "stopped": stopped}


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """The checkout's commit when first asked (the runner asks at its start: the code it runs), with
    ``+uncommitted`` when the package or its requirements differ from it (results files do not count)."""
    repo = Path(__file__).resolve().parents[2]

    def git(*args):
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=10).stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        changed = git("status", "--porcelain", "--", "lrlab", "pyproject.toml", "requirements.txt")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (commit + ("+uncommitted" if changed else "")) if commit else "unknown"


@functools.lru_cache(maxsize=1)
def cpu_id() -> str:
    """The processor, finer than its model name (clouds report "AMD EPYC" for several generations): vendor,
    family, model and stepping from ``/proc/cpuinfo``, and the vector instructions torch's kernels use.
    Runs repeat bit for bit only where this and the torch version are the same."""
    fields = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("vendor_id", "cpu family", "model", "stepping") and key not in fields:
                fields[key] = value.strip()
    except OSError:
        pass
    where = (f"{fields.get('vendor_id', '?')} family {fields.get('cpu family', '?')} model {fields.get('model', '?')} "
             f"stepping {fields.get('stepping', '?')}") if fields else (platform.processor() or platform.machine())
    return f"{where}, {torch.backends.cpu.get_cpu_capability()}"


def device_text(device: torch.device, threads: bool = True) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{device.type} ({cpu}; {os.cpu_count()} cores" + (f", {torch.get_num_threads()} torch threads)"
                                                              if threads else ")")


def same_machine(recorded: dict) -> bool:
    """True when a provenance entry was made on a CPU like this one, with this torch and as many threads:
    then a run made again here gives the same numbers, bit for bit (entries from before the CPU id was
    recorded never match)."""
    return (recorded.get("cpu") == cpu_id() and recorded.get("torch") == torch.__version__
            and f"{torch.get_num_threads()} torch threads" in recorded.get("device", ""))
