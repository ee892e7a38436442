"""The Chinese edition: every markdown cell translated, keeping its references and formulas; none stale;
the Chinese notebooks' code cells are the English ones; stale and missing sections build with a note."""

import json
import shutil

import nbformat
import pytest

from lrlab.course import translation as t
from lrlab.course.book import ROOT


def test_every_chapter_is_translated_keeping_its_references_and_formulas_and_none_is_stale():
    found = t.problems()
    assert not found, "\n".join(f"{chapter}: {issue}" for chapter, issues in found.items() for issue in issues[:10])


def test_the_glossary_lists_terms_with_their_english_and_pytorch_names():
    text = (t.ZH / "glossary.md").read_text(encoding="utf-8")
    assert text.startswith("(glossary-zh)=\n# 术语表")
    rows = [line for line in text.splitlines() if line.startswith("|") and "---" not in line][1:]
    assert len(rows) >= 30
    for term, english in (("学习率", "learning rate"), ("预热", "warmup"), ("余弦", "cosine")):
        assert any(term in row and english in row.lower() for row in rows), term
    assert "`CosineAnnealingLR`" in text or "CosineAnnealingLR" in text


@pytest.mark.parametrize("english, chinese, problem", [
    ("See {ref}`errata` and $x^2$.", "见 $x^2$。", "roles missing"),
    ("The rate is $\\eta_t$ here, as shown.", "学习率是 $\\eta$。", "math missing"),
    ("(label)=\n# Title of the page", "# 标题", "labels missing"),
    ("```{exercise}\n:label: ex-a\n\nDo this now please.\n```", "```{exercise}\n:label: ex-b\n\n做这个。\n```",
     "options missing"),
    ("Read [the chapter](02_why_schedule.ipynb) first, please.", "先读[这一章](03_sqrt_factor.ipynb)。", "links missing"),
    ("A sentence with enough words to translate.", "A sentence with enough words to translate.", "not translated"),
])
def test_check_names_what_a_translation_lost(english, chinese, problem):
    assert any(p.startswith(problem) for p in t.check_unit(english, chinese)), t.check_unit(english, chinese)


def test_check_accepts_a_faithful_translation_with_a_wrapped_formula_and_a_translated_title():
    english = ("```{admonition} Learning objectives\n:class: tip\nAfter this you can compute $a +\nb$ and "
               "read {glue:text}`c2_n` runs ({cite:p}`zhang2023dive`).\n```")
    chinese = "```{admonition} 学习目标\n:class: tip\n学完之后你能计算 $a + b$，并读懂 {glue:text}`c2_n` 次运行（{cite:p}`zhang2023dive`）。\n```"
    assert t.check_unit(english, chinese) == []


def _mini_course(tmp_path):
    """A copy of the course's files a Chinese build reads, with one chapter, to change freely."""
    root = tmp_path / "course"
    (root / "book").mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml", "pyproject.toml"):
        shutil.copy2(ROOT / name, root / name)
    for name in ("intro.md", "references.bib", "06_poly.ipynb"):
        shutil.copy2(ROOT / "book" / name, root / "book" / name)
    (root / "book" / "zh").mkdir()
    for name in ("06_poly.md", "intro.md", "glossary.md"):
        shutil.copy2(t.ZH / name, root / "book" / "zh" / name)
    return root


def test_the_chinese_notebooks_reuse_the_english_code_and_mark_stale_and_missing_sections(tmp_path):
    root = _mini_course(tmp_path)
    path = root / "book" / "06_poly.ipynb"
    nb = json.loads(path.read_text())
    markdown = [c for c in nb["cells"] if c["cell_type"] == "markdown"]
    markdown[1]["source"] = ["The English changed after the translation.\n"]  # stale now
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    zh = root / "book" / "zh"
    done = t.read_translation(zh / "06_poly.md")
    text = (zh / "06_poly.md").read_text()
    last = markdown[-1]["id"]
    (zh / "06_poly.md").write_text(text[:text.index(f"<!-- cell {last} ")])  # the last section missing
    out = tmp_path / "zh"
    t.chinese_edition(out, root=root, zh=zh)
    built = nbformat.read(out / "book" / "06_poly.ipynb", as_version=4)
    english = nbformat.read(path, as_version=4)
    assert [c.source for c in built.cells if c.cell_type == "code"] == [c.source for c in english.cells
                                                                        if c.cell_type == "code"]
    cells = {c.id: c.source for c in built.cells if c.cell_type == "markdown"}
    assert cells[markdown[0]["id"]] == t._joined(done[markdown[0]["id"]][1])
    heading, _, body = t._joined(done[markdown[1]["id"]][1]).partition("\n")  # the note follows the heading
    assert cells[markdown[1]["id"]] == f"{heading}\n\n{t.STALE_NOTE}{body.lstrip()}"
    assert cells[last] == t.MISSING_NOTE + markdown[-1]["source"] if isinstance(markdown[-1]["source"], str) \
        else cells[last] == t.MISSING_NOTE + "".join(markdown[-1]["source"])
    problems = t.problems(root=root, zh=zh)["06_poly.ipynb"]
    assert f"{markdown[1]['id']}: stale (the English changed after it was translated)" in problems
    assert f"{last}: no translation" in problems
    config = (out / "_config.yml").read_text()
    assert "language: zh_CN" in config and t.TITLE in config and 'data-other="../"' in config
    assert (out / "book" / "glossary.md").is_file() and "book/glossary" in (out / "_toc.yml").read_text()


def test_the_chinese_student_edition_has_no_solutions(tmp_path):
    root = _mini_course(tmp_path)
    out = tmp_path / "zh-student"
    t.chinese_edition(out, root=root, zh=root / "book" / "zh", student=True)
    text = (out / "book" / "06_poly.ipynb").read_text()
    assert "solution-start" not in text and "{exercise}" in text
    assert "（学生版）" in (out / "_config.yml").read_text() and 'data-other="../../student/"' in (out / "_config.yml").read_text()


def test_a_template_keeps_what_is_translated_and_adds_new_cells(tmp_path):
    zh = tmp_path / "zh"
    shutil.copytree(t.ZH, zh)
    before = t.read_translation(zh / "06_poly.md")
    t.write_template(ROOT / "book" / "06_poly.ipynb", zh)
    assert t.read_translation(zh / "06_poly.md") == before


def test_the_parts_have_the_chinese_names_the_introduction_uses():
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    intro = (t.ZH / "intro.md").read_text(encoding="utf-8")
    for part in toc["parts"]:
        assert f"**{t.PARTS[part['caption']]}**" in intro


def test_chinese_lines_wrapped_in_the_source_are_joined_outside_code():
    text = "第一行\n第二行，$x$\nand English\n```python\n# 注释\n# 注释\n```"
    assert t._joined(text) == "第一行第二行，$x$\nand English\n```python\n# 注释\n# 注释\n```"
