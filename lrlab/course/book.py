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

__all__ = ["ROOT", "SITE", "assemble_site", "show_table", "Table", "repository_url", "setup_cell_source",
           "SETUP_CELL_ID", "glue", "sync", "stale", "strip_solutions", "student_edition", "chapter_titles"]

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


def _config_with(text: str, url: str, footer: Optional[str] = None) -> str:
    """``_config.yml`` with the repository URL, the link to the Chinese edition and, when given, the footer."""
    text = re.sub(r"(^repository:\s*\n\s+url:\s*)(\S+)", lambda m: m.group(1) + url, text, count=1, flags=re.M)
    text = with_edition_link(text, "en", student=False)
    return text if footer is None else with_footer(text, footer)


def with_footer(config: str, footer: str) -> str:
    """``_config.yml`` text whose pages end with ``footer``."""
    return re.sub(r'^(  extra_footer: )"[^"\n]*"', lambda m: f'{m.group(1)}"{footer}"', config, count=1, flags=re.M)


def version(root: Path = ROOT) -> str:
    """The lrlab version of ``pyproject.toml``."""
    match = re.search(r'^version\s*=\s*"([^"]+)"', (root / "pyproject.toml").read_text(encoding="utf-8"), re.M)
    if not match:
        raise ValueError(f"{root / 'pyproject.toml'} has no version")
    return match.group(1)


def results_date(root: Path = ROOT) -> Optional[str]:
    """The day the newest committed reference run finished (``YYYY-MM-DD``), from the provenance files."""
    import json

    if not (root / "book" / "results").is_dir():
        return None
    days = [run["finished"][:10] for path in (root / "book" / "results").glob("*.provenance.json")
            for run in json.loads(path.read_text(encoding="utf-8")).get("runs", {}).values() if run.get("finished")]
    return max(days) if days else None


#: The footer's words in each edition: the date of the results, and the licences with where to cite from.
FOOTERS = {"en": ("measured results of {date}", "text CC BY-SA 4.0, code MIT · see the introduction for how to cite"),
           "zh": ("实测结果截至 {date}", "正文采用 CC BY-SA 4.0 许可，代码采用 MIT 许可 · 引用方式见引言")}


def footer(root: Path = ROOT, language: str = "en") -> str:
    """The line every page ends with: the version, the date of the results it reads (left out where there are
    none, as in a checkout without ``book/results``), the licences."""
    dated, licences = FOOTERS[language]
    date = results_date(root)
    return " · ".join([f"lrlab {version(root)}"] + ([dated.format(date=date)] if date else []) + [licences])


def citation_with(text: str, url: str, root: Path = ROOT) -> str:
    """``CITATION.cff`` with the repository URL and the version of ``pyproject.toml``."""
    text = re.sub(r"^(repository-code: ).*$", lambda m: f'{m.group(1)}"{url}"', text, count=1, flags=re.M)
    return re.sub(r"^(version: ).*$", lambda m: f'{m.group(1)}"{version(root)}"', text, count=1, flags=re.M)


#: Where the other edition's root is, seen from an edition's root (the site: English at /, its student
#: edition at /student/, the Chinese book at /zh/, its student edition at /zh/student/).
EDITION_LINKS = {("en", False): ("zh/", "中文版 (Chinese edition)"),
                 ("en", True): ("../zh/student/", "中文版 (Chinese edition)"),
                 ("zh", False): ("../", "English edition (英文版)"),
                 ("zh", True): ("../../student/", "English edition (英文版)")}


def with_edition_link(config: str, language: str, student: bool) -> str:
    """``_config.yml`` text whose announcement links to the other edition's same page."""
    other, text = EDITION_LINKS[language, student]
    link = f'<a class="lrlab-edition" data-other="{other}" href="{other}index.html">{text}</a>'
    out, n = re.subn(r"^(  announcement: ).*$", lambda m: f"{m.group(1)}'{link}'", config, count=1, flags=re.M)
    if n != 1:
        raise ValueError("_config.yml has no html announcement line to put the edition link in")
    return out


def _readme_with(text: str, url: str, timing: Optional[str] = None, book: Optional[str] = None) -> str:
    """The README with the repository URL and, when given, the reference runs' and the book's timing in their
    markers."""
    text = re.sub(r"(<!-- repository -->)[^<]*(<!-- /repository -->)", lambda m: f"{m.group(1)}{url}{m.group(2)}",
                  text, count=1)
    if timing is not None:
        text = re.sub(r"(<!-- results-timing -->\n).*?(<!-- /results-timing -->)",
                      lambda m: f"{m.group(1)}{timing}\n{m.group(2)}", text, count=1, flags=re.S)
    if book is not None:
        text = re.sub(r"(<!-- book-timing -->\n).*?(<!-- /book-timing -->)",
                      lambda m: f"{m.group(1)}{book}\n{m.group(2)}", text, count=1, flags=re.S)
    return text


def book_timing(root: Path = ROOT) -> Optional[str]:
    """The README's sentence on how long executing the book takes per profile, from ``chapter_times.csv``."""
    import pandas as pd

    path = root / "book" / "results" / "chapter_times.csv"
    if not path.is_file():
        return None
    times = pd.read_csv(path)
    parts = []
    for profile in ("smoke", "laptop", "full"):
        mine = times[times.profile == profile]
        if mine.empty:
            continue
        ok = mine[mine.status == "ok"]
        text = f"`{profile}` {ok.seconds.sum() / 60:.0f} minutes for {len(ok)} chapters"
        missing = mine[mine.status != "ok"]
        if len(missing):
            text += f" ({len(missing)} more not measured: {'; '.join(sorted(set(missing.status)))})"
        parts.append(text)
    days = sorted(times.date.str[:10])
    device = ", ".join(sorted(set(times.device)))
    return (f"Executing every chapter top to bottom (`benchmarks/chapter_times.py`, on {device}, {days[0]} to "
            f"{days[-1]}): {'; '.join(parts)}.")


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
    dated_footer = footer(root) if results_date(root) else None  # no results here: leave the committed footer
    for path, change in ((root / "_config.yml", lambda t: _config_with(t, url, dated_footer)),
                         (root / "README.md", lambda t: _readme_with(t, url, timing, book_timing(root))),
                         (root / "CITATION.cff", lambda t: citation_with(t, url, root)),
                         (root / "book" / "intro.md",
                          lambda t: re.sub(r"^(  url    = \{)[^}]*\}", lambda m: m.group(1) + url + "}", t, flags=re.M))):
        if not path.is_file() and path.name in ("CITATION.cff", "intro.md"):
            continue  # a partial tree (the tests'): only the files it has
        text = path.read_text(encoding="utf-8")
        out[path] = (text, change(text))
    for path in sorted((root / "book").glob("*.ipynb")):
        text = path.read_text(encoding="utf-8")
        out[path] = (text, _notebook_with(text, source))
    return out


def stale(root: Path = ROOT) -> list:
    """The files whose repository URL (``_config.yml``, README, ``CITATION.cff``, the introduction's citation, the
    set-up cells), version, footer or results timing differs from what :func:`sync` would write."""
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


def edition_folder(out: Path, root: Path, example: str) -> Path:
    """Prepare ``out`` for an edition of the book built from the course at ``root``: refuse a folder that would
    overwrite the course, empty ``out/book``, copy ``_static`` (the edition link, the sortable tables, their
    style), the references and the measured results; returns ``out/book``. ``example``: a folder to suggest
    instead."""
    import shutil

    out = Path(out)
    if out.resolve() == root.resolve() or root.resolve() in out.resolve().parents and out.name == "book":
        raise ValueError(f"out={out} would overwrite the course; choose a folder such as {example}")
    book = out / "book"
    if book.exists():
        shutil.rmtree(book)
    book.mkdir(parents=True)
    if (root / "_static").is_dir():
        shutil.copytree(root / "_static", out / "_static", dirs_exist_ok=True)
    shutil.copy2(root / "book" / "references.bib", book / "references.bib")
    if (root / "book" / "results").is_dir():
        shutil.copytree(root / "book" / "results", book / "results", ignore=shutil.ignore_patterns(".runs"))
    return book


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
    book = edition_folder(out, root, "_build/student")
    shutil.copy2(root / "_toc.yml", out / "_toc.yml")
    config = (root / "_config.yml").read_text(encoding="utf-8")
    config = re.sub(r'^title:\s*"?(.*?)"?\s*$', lambda m: f'title: "{m.group(1)} (student edition)"', config,
                    count=1, flags=re.M)
    config = with_edition_link(config, "en", student=True)
    (out / "_config.yml").write_text(config, encoding="utf-8")
    shutil.copy2(root / "book" / "intro.md", book / "intro.md")
    written = []
    for path in sorted((root / "book").glob("*.ipynb")):
        nb = strip_solutions(nbformat.read(path, as_version=4))
        nbformat.write(nb, book / path.name)
        written.append(book / path.name)
    return written


# --------------------------------------------------------------------------------------------- the site

#: The site's folders, each with the build that fills it (built HTML, relative to the checkout) and its command.
SITE = {"": ("_build/html", "make book"), "student": ("_build/student/_build/html", "make student"),
        "zh": ("_build/zh/html", "make book-zh"), "zh/student": ("_build/zh-student/html", "make student-zh")}


def assemble_site(out: Path, root: Path = ROOT, require: tuple = ("",)) -> list:
    """Put the built editions under one root as the site publishes them: the English book at ``out``, its
    student edition at ``out/student``, the Chinese edition at ``out/zh`` and its student edition at
    ``out/zh/student``; those not built are left out, except ``require``'s (an error naming the command).
    Returns the folders written."""
    import shutil

    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    written = []
    for folder, (built, command) in SITE.items():
        source = (root / built).resolve()
        if not (source / "index.html").is_file():
            if folder in require:
                raise FileNotFoundError(f"{root / built} has no built book: run `{command}` first")
            continue
        shutil.copytree(source, out / folder, dirs_exist_ok=True)
        written.append(out / folder)
    (out / ".nojekyll").touch()  # GitHub Pages: serve _static/ and _images/ as they are
    return written


# --------------------------------------------------------------------------------------------- tables


class Table:
    """A table as the book shows it: an HTML table in the pages (sortable by a click on a column's head, by
    ``_static/tables.js``) and the same table as text where there is no HTML (a terminal, a text diff).
    Both views are made from the frame alone, so they are the same on every run."""

    def __init__(self, frame, sortable: bool = True):
        self.frame = frame.to_frame() if hasattr(frame, "to_frame") and getattr(frame, "ndim", 2) == 1 else frame
        self.sortable = sortable

    def _repr_html_(self) -> str:
        classes = ["lrlab-table"] + (["lrlab-sortable"] if self.sortable else [])
        return self.frame.to_html(classes=classes, border=0, escape=True)

    def __repr__(self) -> str:
        return self.frame.to_string()


def show_table(frame, sortable: bool = True) -> Table:
    """``frame`` as the book's table (the cell's last expression): HTML in the pages, text elsewhere."""
    return Table(frame, sortable)
