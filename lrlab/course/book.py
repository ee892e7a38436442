"""The book's plumbing: the repository's one URL, the set-up cell every chapter starts with, numbers glued into prose.

* :func:`repository_url`: the course's repository, named in one place only, ``[project.urls]`` of
  ``pyproject.toml``. :func:`sync` writes it into ``_config.yml`` (the Colab and repository buttons),
  the README and every chapter's set-up cell; ``tests/test_course.py`` fails when one of them differs.
* :func:`setup_cell_source`: the first code cell of every chapter. Where ``lrlab`` cannot be imported
  (Colab, a fresh environment) it installs ``lrlab[book]`` from the repository and d2l without its
  pins; elsewhere it does nothing. ``$LRLAB_INSTALL`` replaces the repository as the source (a local
  path or wheel: how the tests run it offline).
* :func:`glue`: numbers a chapter computes from the results, handed to the book's prose
  (``{glue:text}`name:.3f```). Without MyST-NB (a notebook opened in Colab) it does nothing.
* :func:`student_edition`: the chapters with every solution removed and every exercise kept, for a
  course lab to hand out (``make student``).

``python -m lrlab.course sync`` (``make sync``) rewrites the three places from ``pyproject.toml``, and the
README's timing of the reference runs from their provenance (:func:`lrlab.course.results.timing_text`).
"""

from __future__ import annotations

import numbers
import re
from pathlib import Path
from typing import Optional

__all__ = ["ROOT", "repository_url", "setup_cell_source", "SETUP_CELL_ID", "glue", "sync", "stale",
           "strip_solutions", "student_edition", "chapter_titles"]

ROOT = Path(__file__).resolve().parents[2]
SETUP_CELL_ID = "setup"
#: d2l is installed on its own, without its pins (see requirements.txt).
D2L = "d2l==1.0.3"


def repository_url(pyproject: Optional[Path] = None) -> str:
    """The course's repository: ``Repository`` in ``[project.urls]`` of ``pyproject.toml``.

    Read from the checkout's ``pyproject.toml`` when there is one, else from the installed package's
    metadata (the same field, as ``Project-URL``).
    """
    path = pyproject or ROOT / "pyproject.toml"
    if path.is_file():
        match = re.search(r'^\[project\.urls\][^\[]*?^Repository\s*=\s*"([^"]+)"', path.read_text(), re.M | re.S)
        if not match:
            raise ValueError(f"{path} names no Repository in [project.urls]; add: Repository = \"https://...\"")
        return match.group(1)
    from importlib.metadata import metadata

    for entry in metadata("lrlab").get_all("Project-URL") or []:
        label, _, url = entry.partition(",")
        if label.strip().lower() == "repository":
            return url.strip()
    raise ValueError("the installed lrlab names no Repository URL in its metadata")  # pragma: no cover


def setup_cell_source(url: Optional[str] = None) -> str:
    """The set-up cell: install the course's package where it is missing, as plain Python (no magics)."""
    url = url or repository_url()
    return f'''# Set-up: where lrlab is missing (Colab, a fresh environment), install it from the course's repository.
import importlib.util, os, subprocess, sys

if importlib.util.find_spec("lrlab") is None:
    source = os.environ.get("LRLAB_INSTALL", "git+{url}")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"lrlab[book] @ {{source}}"], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "{D2L}"], check=True)'''


def glue(**values) -> None:
    """Glue numbers for the book's prose: ``glue(acc=0.91)`` makes ``{glue:text}`acc:.2f``` print 0.91.

    NumPy scalars become plain Python numbers first (MyST-NB formats the text it stores, and NumPy 2
    writes ``np.float64(0.91)``). Without MyST-NB, nothing happens.
    """
    try:
        from myst_nb import glue as _glue
    except ImportError:  # pragma: no cover - the course environment has MyST-NB
        return
    for name, value in values.items():
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            value = int(value)
        elif isinstance(value, numbers.Real):
            value = float(value)
        _glue(name, value, display=False)


def chapter_titles(root: Path = ROOT, by: str = "stem") -> dict:
    """Every chapter's title (the first heading of its notebook, as the book's navigation names it), in the
    order of the table of contents, keyed by the notebook's stem (``by="stem"``) or by the chapter's label,
    the target its first line declares (``by="label"``, what ``{ref}`` links to)."""
    import json

    import yaml

    if by not in ("stem", "label"):
        raise ValueError(f"by must be 'stem' or 'label'; got {by!r}")
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    files = [entry["file"] for part in toc.get("parts", [toc]) for entry in part.get("chapters", [])]
    titles = {}
    for file in files:
        path = root / f"{file}.ipynb"
        if not path.is_file():
            continue
        text = "".join("".join(c["source"]) + "\n" for c in json.loads(path.read_text(encoding="utf-8"))["cells"]
                       if c["cell_type"] == "markdown")
        heading, label = re.search(r"^# (.+)$", text, re.M), re.search(r"^\((.+?)\)=$", text, re.M)
        if heading:
            titles[path.stem if by == "stem" else (label.group(1) if label else path.stem)] = heading.group(1).strip()
    return titles


# --------------------------------------------------------------------------------------------- sync


def _config_with(text: str, url: str) -> str:
    return re.sub(r"(^repository:\s*\n\s+url:\s*)(\S+)", lambda m: m.group(1) + url, text, count=1, flags=re.M)


def _readme_with(text: str, url: str, timing: Optional[str] = None) -> str:
    """The README with the repository URL and, when given, the reference runs' timing in their markers."""
    text = re.sub(r"(<!-- repository -->)[^<]*(<!-- /repository -->)", lambda m: f"{m.group(1)}{url}{m.group(2)}",
                  text, count=1)
    if timing is not None:
        text = re.sub(r"(<!-- results-timing -->\n).*?(<!-- /results-timing -->)",
                      lambda m: f"{m.group(1)}{timing}\n{m.group(2)}", text, count=1, flags=re.S)
    return text


def _timing(root: Path) -> Optional[str]:
    """The timing text of the reference runs under ``root/book/results``; None where they are missing."""
    from .results import ResultsError, timing_text

    try:
        return timing_text(where=root / "book" / "results")
    except ResultsError:
        return None


def _notebook_with(text: str, source: str) -> str:
    """The notebook ``text`` with its set-up cell (the first code cell, id ``setup``) holding ``source``."""
    import nbformat

    nb = nbformat.reads(text, as_version=4)
    cell = nbformat.v4.new_code_cell(source)
    cell.id = SETUP_CELL_ID
    cell.metadata["tags"] = ["remove-cell"]  # plumbing: run in notebooks, hidden in the HTML book
    existing = [i for i, c in enumerate(nb.cells) if c.get("id") == SETUP_CELL_ID]
    if existing:
        nb.cells[existing[0]] = cell
    else:
        first = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), len(nb.cells))
        nb.cells.insert(first, cell)
    out = nbformat.writes(nb)
    return out if out.endswith("\n") else out + "\n"


def _plan(root: Path) -> dict:
    """``{path: (current text, synced text)}`` for every file that names the repository."""
    url = repository_url(root / "pyproject.toml")
    source = setup_cell_source(url)
    timing = _timing(root)
    out = {}
    for path, change in ((root / "_config.yml", lambda t: _config_with(t, url)),
                         (root / "README.md", lambda t: _readme_with(t, url, timing))):
        text = path.read_text(encoding="utf-8")
        out[path] = (text, change(text))
    for path in sorted((root / "book").glob("*.ipynb")):
        text = path.read_text(encoding="utf-8")
        out[path] = (text, _notebook_with(text, source))
    return out


def stale(root: Path = ROOT) -> list:
    """The files whose repository URL, set-up cell or results timing differs from what :func:`sync` would write."""
    return [path for path, (now, synced) in _plan(root).items() if now != synced]


def sync(root: Path = ROOT) -> list:
    """Write the repository URL and the set-up cell into ``_config.yml``, the README and every chapter,
    and the reference runs' timing into the README."""
    from .results import write_atomic

    changed = []
    for path, (now, synced) in _plan(root).items():
        if now != synced:
            write_atomic(path, synced)
            changed.append(path)
    return changed



# --------------------------------------------------------------------------------------------- student edition

_SOLUTION_BLOCK = re.compile(r"^(`{3,})\{solution\}[^\n]*\n.*?^\1[ \t]*(\n|\Z)", re.M | re.S)
_START = re.compile(r"^(`{3,})\{solution-start\}[^\n]*\n.*?^\1[ \t]*(\n|\Z)", re.M | re.S)
_END = re.compile(r"^(`{3,})\{solution-end\}[^\n]*\n(?:.*?\n)??^\1[ \t]*(\n|\Z)", re.M | re.S)


def strip_solutions(nb):
    """A copy of the notebook ``nb`` (an nbformat node) without its solutions; exercises and all else kept.

    Removes every ``{solution}`` block, and everything from a ``{solution-start}`` directive to its
    ``{solution-end}`` (the cells in between, code included); cells left empty are dropped.
    """
    import copy

    out = copy.deepcopy(nb)
    cells, inside = [], False
    for cell in out.cells:
        text = cell.source
        if inside:
            end = _END.search(text)
            if not end:
                continue  # a cell of the solution
            text, inside = text[end.end():], False
        if cell.cell_type == "markdown":
            text = _SOLUTION_BLOCK.sub("", text)
            start = _START.search(text)
            if start:
                after = text[start.end():]
                end = _END.search(after)
                text = text[:start.start()] + (after[end.end():] if end else "")
                inside = end is None
        if text.strip():
            cell.source = text.rstrip("\n")
            cells.append(cell)
    if inside:
        raise ValueError("a {solution-start} has no {solution-end}")
    out.cells = cells
    return out


def student_edition(out: Path, root: Path = ROOT) -> list:
    """Write the student edition under ``out``: the chapters without solutions, and a book that builds them.

    ``out`` gets ``_toc.yml``, a ``_config.yml`` titled as the student edition, and ``book/`` with
    ``intro.md``, ``references.bib``, the measured ``results/`` and every chapter through
    :func:`strip_solutions`. Returns the notebooks written. Its HTML build executes the notebooks (the
    prose quotes numbers that cells compute from the results); ``make student`` does it in the smoke
    profile unless ``LRLAB_PROFILE`` says otherwise.
    """
    import shutil

    import nbformat

    out = Path(out)
    if out.resolve() == root.resolve() or root.resolve() in out.resolve().parents and out.name == "book":
        raise ValueError(f"out={out} would overwrite the course; choose a folder such as _build/student")
    book = out / "book"
    if book.exists():
        shutil.rmtree(book)
    book.mkdir(parents=True)
    shutil.copy2(root / "_toc.yml", out / "_toc.yml")
    config = (root / "_config.yml").read_text(encoding="utf-8")
    config = re.sub(r'^title:\s*"?(.*?)"?\s*$', lambda m: f'title: "{m.group(1)} (student edition)"', config,
                    count=1, flags=re.M)
    (out / "_config.yml").write_text(config, encoding="utf-8")
    for name in ("intro.md", "references.bib"):
        shutil.copy2(root / "book" / name, book / name)
    if (root / "book" / "results").is_dir():
        shutil.copytree(root / "book" / "results", book / "results", ignore=shutil.ignore_patterns(".runs"))
    written = []
    for path in sorted((root / "book").glob("*.ipynb")):
        nb = strip_solutions(nbformat.read(path, as_version=4))
        nbformat.write(nb, book / path.name)
        written.append(book / path.name)
    return written
