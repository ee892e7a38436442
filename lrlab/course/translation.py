"""The Chinese edition (中文版): the English notebooks' code with translated prose, assembled at build time.

Translations live beside the book, one file per chapter: ``book/zh/<chapter>.md`` (``book/zh/intro.md``
for the introduction). Each markdown cell of the English notebook is one section of that file, opened by
a marker that names the cell's id and a fingerprint of the English text it was translated from::

    <!-- cell c03 en:1f3a9c0b2e -->
    ## 公式
    ...

Code cells are never translated or copied: :func:`chinese_edition` builds each Chinese notebook from the
English one, replacing only the markdown cells' text. A cell whose English text changed after it was
translated (its fingerprint no longer matches) is *stale*: the page still builds, with a visible note on
that section, and :func:`problems` lists it. :func:`problems` also checks that every translation keeps its
English cell's glue references, labels, cross-references, citations, directives, links and formulas.

``python -m lrlab.course zh template CHAPTER`` writes a chapter's file with the English text under each
marker (to translate in place), ``zh check`` lists the problems, ``zh build OUT [--student]`` assembles the
Chinese book (``make book-zh``, ``make student-zh``).
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .book import ROOT, edition_folder, footer, strip_solutions, with_edition_link, with_footer

__all__ = ["ZH", "fingerprint", "read_translation", "write_template", "keys", "problems", "chinese_edition",
           "STALE_NOTE", "MISSING_NOTE", "chapters"]

#: Where the translations are.
ZH = ROOT / "book" / "zh"
INTRO = "intro.md"
MARKER = re.compile(r"^<!-- cell (\S+) en:([0-9a-f]{10}) -->[ \t]*$", re.M)
STALE_NOTE = ("```{admonition} 译文待更新\n:class: warning\n本节的英文原文在翻译之后有改动，下面的译文可能与之不符；"
              "以英文版为准。\n```\n\n")
MISSING_NOTE = "```{admonition} 尚未翻译\n:class: warning\n本节还没有中文译文，下面是英文原文。\n```\n\n"
TITLE = "PyTorch 学习率调度"
#: The parts of the table of contents in Chinese, as the introduction's map names them.
PARTS = {"The d2l section: Learning Rate Scheduling": "d2l 的一节：学习率调度器", "The tutorials": "三篇教程",
         "Beyond the sources": "超出来源的内容", "Synthesis": "综合"}
_CJK_BREAK = re.compile(r"(?<=[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef])\n(?=[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef])")


def fingerprint(text: str) -> str:
    """The first 10 hex digits of the SHA-256 of the English text (surrounding whitespace ignored)."""
    return hashlib.sha256(text.strip().encode("utf-8")).hexdigest()[:10]


def chapters(root: Path = ROOT) -> list:
    """The English chapters: every notebook of ``book/``, and the introduction."""
    return sorted((root / "book").glob("*.ipynb")) + [root / "book" / INTRO]


@dataclass(frozen=True)
class Unit:
    """One translatable piece of a chapter: a markdown cell (``key`` = its id), or the introduction."""

    key: str
    english: str


def units(path: Path) -> list:
    """The English pieces of a chapter, in order."""
    path = Path(path)
    if path.suffix == ".md":
        return [Unit(path.name, path.read_text(encoding="utf-8"))]
    import nbformat

    nb = nbformat.read(path, as_version=4)
    return [Unit(c.id, c.source) for c in nb.cells if c.cell_type == "markdown"]


def _zh_dir(root: Path, zh: Optional[Path]) -> Path:
    """The translations of the course at ``root``: ``zh`` when given, else its ``book/zh``."""
    return Path(zh) if zh is not None else Path(root) / "book" / "zh"


def translation_path(chapter: Path, zh: Path = ZH) -> Path:
    return Path(zh) / f"{Path(chapter).stem}.md"


def read_translation(path: Path) -> dict:
    """``{key: (fingerprint, text)}`` from a translation file (empty when there is none)."""
    path = Path(path)
    if not path.is_file():
        return {}
    text = path.read_text(encoding="utf-8")
    found = list(MARKER.finditer(text))
    out = {}
    for i, m in enumerate(found):
        end = found[i + 1].start() if i + 1 < len(found) else len(text)
        if m.group(1) in out:
            raise ValueError(f"{path}: cell {m.group(1)} is translated twice; keep one section")
        out[m.group(1)] = (m.group(2), text[m.end():end].strip("\n"))
    return out


def write_template(chapter: Path, zh: Path = ZH) -> Path:
    """Write ``chapter``'s translation file with each English piece under its marker (kept where translated)."""
    path = translation_path(chapter, zh)
    done = read_translation(path)
    parts = []
    for u in units(chapter):
        mark, text = done.get(u.key, (fingerprint(u.english), u.english))
        parts.append(f"<!-- cell {u.key} en:{mark} -->\n{text.strip()}\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- what a translation must keep

_CODE_SPAN = re.compile(r"``[^`]+``|`(?:[^`\n]|\n(?!\s*\n))+`")
_ROLE = re.compile(r"\{([a-z:]+)\}`([^`]+)`")
_DISPLAY_MATH = re.compile(r"\$\$.+?\$\$", re.S)
_INLINE_MATH = re.compile(r"(?<![\\$])\$(?!\$)((?:[^$\n]|\n(?!\s*\n))+?)(?<!\\)\$")  # may wrap a line
_LABEL = re.compile(r"^\(([^()\s]+)\)=\s*$", re.M)
_DIRECTIVE = re.compile(r"^(?:`{3,}|:{3,})\{([\w-]+)\}[ \t]*(.*)$", re.M)
_OPTION = re.compile(r"^:(label|class|name|numbered|nonumber):[ \t]*(.*)$", re.M)
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_WORDS = re.compile(r"[A-Za-z]{3,}")
#: What a translation must keep at least once (a formula may be repeated or referred back to in other words).
_AS_SETS = ("roles", "math", "links")
#: Directives whose argument is a title a translation rewrites; the others' arguments are names to keep.
_TITLED = {"admonition", "note", "tip", "warning", "important", "caution", "figure", "dropdown"}


def keys(text: str) -> dict:
    """What a translation of ``text`` must keep, each as a Counter: glue references and other roles, formulas,
    labels, directives (with their arguments, except titles), directive options, link targets."""
    roles = Counter(f"{{{r}}}`{v}`" for r, v in _ROLE.findall(text))
    no_roles = _ROLE.sub(" ", text)
    display = _DISPLAY_MATH.findall(no_roles)
    rest = _DISPLAY_MATH.sub(" ", no_roles)
    inline = _INLINE_MATH.findall(_CODE_SPAN.sub(" ", rest))
    directives = Counter(name if name in _TITLED else f"{name} {arg.strip()}".strip()
                         for name, arg in _DIRECTIVE.findall(text))
    return {"roles": roles, "math": Counter(_spaced(m) for m in display) + Counter(_spaced(f"${m}$") for m in inline),
            "labels": Counter(_LABEL.findall(text)), "directives": directives,
            "options": Counter(f":{k}: {v.strip()}" for k, v in _OPTION.findall(text)),
            "links": Counter(_LINK.findall(text))}


def _spaced(formula: str) -> str:
    """A formula with its runs of whitespace (a line break where the text wraps) as one space."""
    return re.sub(r"\s+", " ", formula.strip())


def _needs_words(english: str) -> bool:
    """Whether ``english`` has prose to translate (not only labels, directives, roles, formulas)."""
    bare = _DISPLAY_MATH.sub(" ", _ROLE.sub(" ", _CODE_SPAN.sub(" ", english)))
    bare = _DIRECTIVE.sub(" ", _OPTION.sub(" ", _LABEL.sub(" ", bare)))
    return len(_WORDS.findall(bare)) >= 3


def check_unit(english: str, chinese: str) -> list:
    """What ``chinese`` fails to keep of ``english``: a list of sentences (empty when it keeps everything)."""
    out = []
    want, got = keys(english), keys(chinese)
    for kind in want:
        if kind in _AS_SETS:  # every one kept, none invented; how often a sentence repeats one is the translator's
            missing, extra = set(want[kind]) - set(got[kind]), set(got[kind]) - set(want[kind])
        else:
            missing, extra = want[kind] - got[kind], got[kind] - want[kind]
        if missing:
            out.append(f"{kind} missing: {sorted(missing)}")
        if extra:
            out.append(f"{kind} not in the English: {sorted(extra)}")
    if _needs_words(english) and not _CJK.search(chinese):
        out.append("not translated (no Chinese text)")
    return out


def problems(root: Path = ROOT, zh: Optional[Path] = None) -> dict:
    """``{chapter file: [problem, ...]}`` for every chapter with one: a piece untranslated, stale (its English
    changed since), or not keeping what :func:`keys` lists; translations of cells that no longer exist."""
    zh = _zh_dir(root, zh)
    found = {}
    for chapter in chapters(root):
        done = read_translation(translation_path(chapter, zh))
        issues = []
        pieces = units(chapter)
        for u in pieces:
            if u.key not in done:
                issues.append(f"{u.key}: no translation")
                continue
            mark, text = done[u.key]
            if mark != fingerprint(u.english):
                issues.append(f"{u.key}: stale (the English changed after it was translated)")
            issues += [f"{u.key}: {p}" for p in check_unit(u.english, text)]
        gone = set(done) - {u.key for u in pieces}
        issues += [f"{k}: translates a cell the English chapter no longer has" for k in sorted(gone)]
        if issues:
            found[chapter.name] = issues
    return found


# --------------------------------------------------------------------------- the Chinese book


def _joined(text: str) -> str:
    """Chinese lines wrapped in the source joined again outside code blocks: HTML shows a line break between
    two Chinese characters as a space, which Chinese text does not have."""
    parts = re.split(r"(^```.*?^```)", text, flags=re.M | re.S)
    return "".join(p if p.startswith("```") and not re.match(r"```\{(admonition|note|tip|warning|exercise)", p)
                   else _CJK_BREAK.sub("", p) for p in parts)


def _translated(u: Unit, done: dict) -> str:
    if u.key not in done:
        return MISSING_NOTE + u.english
    mark, text = done[u.key]
    text = _joined(text)
    if mark == fingerprint(u.english):
        return text
    lines = text.split("\n")  # the note goes after a leading label or title, so headings keep their place
    head = 0
    while head < len(lines) and (_LABEL.match(lines[head]) or lines[head].startswith("#")):
        head += 1
    rest = "\n".join(lines[head:]).lstrip("\n")
    return "\n".join(lines[:head] + ([""] if head else []) + [STALE_NOTE.rstrip("\n"), "", rest])


def _config(root: Path, student: bool) -> str:
    """The English ``_config.yml`` with the Chinese title, Sphinx's ``language: zh_CN`` (its search and labels),
    the link back to the English edition, and the text footer in Chinese."""
    config = (root / "_config.yml").read_text(encoding="utf-8")
    title = TITLE + ("（学生版）" if student else "")
    config = re.sub(r'^title:\s*.*$', f'title: "{title}"', config, count=1, flags=re.M)
    if "  config:\n" not in config:
        raise ValueError("_config.yml has no sphinx config section to set the language in")
    config = config.replace("  config:\n", "  config:\n    language: zh_CN\n", 1)
    return with_edition_link(with_footer(config, footer(root, "zh")), "zh", student)


def chinese_edition(out: Path, root: Path = ROOT, zh: Optional[Path] = None, student: bool = False,
                    cache: Optional[Path] = None) -> list:
    """Assemble the Chinese book under ``out``: ``_config.yml`` (Chinese title, ``language: zh_CN``),
    ``_toc.yml`` (the English one, and the glossary), and ``book/`` with every chapter's notebook (its code
    cells the English ones, its markdown cells translated; stale and untranslated ones marked), the
    introduction, the glossary, the references and the measured results. ``student``: every solution removed
    (:func:`lrlab.course.book.strip_solutions`). ``cache``: the jupyter-cache folder to execute through (the
    English build's, whose notebooks have the same code). Returns the notebooks written."""
    import nbformat
    import yaml

    out, zh = Path(out), _zh_dir(root, zh)
    book = edition_folder(out, root, "_build/zh/src")
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    for part in toc.get("parts", []):
        if part.get("caption") not in PARTS:
            raise ValueError(f"_toc.yml's part {part.get('caption')!r} has no Chinese name in "
                             f"lrlab.course.translation.PARTS; add one")
        part["caption"] = PARTS[part["caption"]]
    _add_glossary(toc)
    (out / "_toc.yml").write_text(yaml.safe_dump(toc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    config = _config(root, student)
    if cache is not None:  # the English build's executed notebooks: the code cells are the same
        config = config.replace("  execute_notebooks: cache", f"  cache: {Path(cache).resolve()}\n  execute_notebooks: cache", 1)
    (out / "_config.yml").write_text(config, encoding="utf-8")
    shutil.copy2(zh / "glossary.md", book / "glossary.md")
    intro = root / "book" / INTRO
    (book / INTRO).write_text(_translated(units(intro)[0], read_translation(translation_path(intro, zh))) + "\n",
                              encoding="utf-8")
    written = []
    for path in sorted((root / "book").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        done = read_translation(translation_path(path, zh))
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cell.source = _translated(Unit(cell.id, cell.source), done)
        if student:
            nb = strip_solutions(nb)
        nbformat.write(nb, book / path.name)
        written.append(book / path.name)
    return written


def _add_glossary(toc: dict) -> None:
    """The glossary page after the last chapter of the book (in its last part, where there are parts)."""
    entry = {"file": "book/glossary"}
    if "parts" in toc:
        toc["parts"][-1]["chapters"].append(entry)
    else:
        toc["chapters"].append(entry)


def main(argv) -> int:
    """``zh template CHAPTER...`` | ``zh check`` | ``zh build OUT [--student] [--cache DIR]``."""
    if argv[:1] == ["template"] and len(argv) > 1:
        for name in argv[1:]:
            print(f"wrote {write_template(Path(name))}")
        return 0
    if argv == ["check"]:
        found = problems()
        for chapter, issues in found.items():
            print(f"{chapter}:")
            for issue in issues:
                print(f"  {issue}")
        print("no problems" if not found else f"{sum(map(len, found.values()))} problems in {len(found)} chapters")
        return 1 if found else 0
    if argv[:1] == ["build"] and len(argv) >= 2:
        import argparse

        p = argparse.ArgumentParser(prog="python -m lrlab.course zh build")
        p.add_argument("out")
        p.add_argument("--student", action="store_true", help="without the solutions")
        p.add_argument("--cache", default=None, help="the jupyter-cache folder of the English build")
        args = p.parse_args(argv[1:])
        written = chinese_edition(Path(args.out), student=args.student, cache=args.cache)
        print(f"wrote {len(written)} Chinese chapters to {Path(args.out) / 'book'}")
        return 0
    print(main.__doc__)
    return 2
