"""lrlab.course.book: one repository URL everywhere, the chapters' set-up cell (run for real in a clean
environment, where two chapters then run from the installed package), the profile a CPU-only Colab gets,
and the numbers glued into the book's prose."""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
import torch

from lrlab.course import book as course, profiles

ROOT = Path(__file__).resolve().parents[1]


def test_every_place_names_the_one_repository_url():
    url = course.repository_url()
    assert url.startswith("https://") and url in (ROOT / "pyproject.toml").read_text()
    assert course.stale() == [], "run `make sync`: these files differ from pyproject.toml's Repository URL"
    assert f"url: {url}" in (ROOT / "_config.yml").read_text()
    assert f"<!-- repository -->{url}<!-- /repository -->" in (ROOT / "README.md").read_text()


def test_every_chapter_starts_with_the_set_up_cell():
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        first_code = next(c for c in cells if c["cell_type"] == "code")
        assert first_code["id"] == course.SETUP_CELL_ID, path.name
        assert "".join(first_code["source"]) == course.setup_cell_source(), path.name
        assert first_code["metadata"]["tags"] == ["remove-cell"]


def test_sync_rewrites_a_changed_url(tmp_path):
    for name in ("_config.yml", "README.md"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "x.ipynb").write_text((ROOT / "book" / "06_poly.ipynb").read_text())
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text().replace(
        course.repository_url(), "https://example.org/fork"))
    assert len(course.stale(tmp_path)) == 3
    assert len(course.sync(tmp_path)) == 3 and course.stale(tmp_path) == []
    assert "url: https://example.org/fork" in (tmp_path / "_config.yml").read_text()
    assert "git+https://example.org/fork" in (tmp_path / "book" / "x.ipynb").read_text()


def test_a_missing_repository_url_is_named(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    with pytest.raises(ValueError, match=r"names no Repository in \[project\.urls\]"):
        course.repository_url(tmp_path / "pyproject.toml")


@pytest.mark.skipif(not (ROOT / ".venv").is_dir() and "VIRTUAL_ENV" not in os.environ,
                    reason="needs the course's virtual environment to lend the clean one its dependencies")
def test_set_up_cell_installs_lrlab_into_a_clean_environment(tmp_path):
    """The cell, run by a Python that has the course's dependencies but no lrlab, installs lrlab from a wheel;
    then two chapters that read the committed results run there, outside the repository.

    The clean environment is a venv without pip whose site-packages has a .pth line pointing at this
    environment's site-packages: torch and the rest (pip too) are importable, lrlab is not (its editable
    install is not seen through a .pth line). $LRLAB_INSTALL points the cell at a wheel built from this
    checkout, and PIP_NO_INDEX keeps pip off the network.
    """
    source = tmp_path / "source"  # built from a copy: setuptools leaves a build/ folder where it builds
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "lrlab", source / "lrlab", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "book" / "results", source / "book" / "results", ignore=shutil.ignore_patterns(".runs"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path), str(source)], check=True)
    wheel = next(tmp_path.glob("lrlab-*.whl"))
    env_dir = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "course-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    check = "import importlib.util; print(importlib.util.find_spec('lrlab') is None)"
    env = {**os.environ, "LRLAB_INSTALL": wheel.as_uri(), "PIP_NO_INDEX": "1"}
    env.pop("PYTHONPATH", None)
    before = subprocess.run([str(python), "-c", check], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert before.stdout.strip() == "True", before.stderr  # lrlab is missing before the cell runs
    script = course.setup_cell_source() + "\nimport lrlab, lrlab.course\nprint(lrlab.__file__)\n"
    ran = subprocess.run([str(python), "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip().startswith(str(env_dir)), ran.stdout  # installed into the clean environment
    again = subprocess.run([str(python), "-c", course.setup_cell_source()], cwd=tmp_path, env=env,
                           capture_output=True, text=True)
    assert again.returncode == 0 and again.stdout == "", again.stderr  # with lrlab present it does nothing

    # Two chapters that read the committed results, run where a reader opens them: outside the repository,
    # with the installed package only (its results are package data), in the smoke profile.
    kernels = tmp_path / "jupyter" / "kernels" / "lrlab-clean"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({"argv": [str(python), "-m", "ipykernel_launcher", "-f",
                                                              "{connection_file}"],
                                                     "display_name": "clean", "language": "python"}))
    run_chapters = (
        "import sys, nbformat\n"
        "from nbclient import NotebookClient\n"
        "for path in sys.argv[1:]:\n"
        "    nb = nbformat.read(path, as_version=4)\n"
        "    NotebookClient(nb, timeout=600, kernel_name='lrlab-clean', resources={'metadata': {'path': '.'}}).execute()\n"
        "    print('ran', path)\n")
    chapters = ["02_why_schedule.ipynb", "09c_unknown_budget.ipynb"]
    reader = tmp_path / "reader"
    reader.mkdir()
    for name in chapters:
        shutil.copy2(ROOT / "book" / name, reader / name)
    env.update(JUPYTER_PATH=str(tmp_path / "jupyter"), LRLAB_PROFILE="smoke", MPLBACKEND="Agg")
    env.pop("LRLAB_RESULTS", None)
    ran = subprocess.run([str(python), "-c", run_chapters, *chapters], cwd=reader, env=env, capture_output=True,
                         text=True, timeout=1200)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert ran.stdout.splitlines() == [f"ran {name}" for name in chapters]
    installed = subprocess.run([str(python), "-c", "from lrlab.course import results; print(results.results_dir())"],
                               cwd=reader, env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert installed.startswith(str(env_dir)) and installed.endswith("lrlab/course/reference"), installed


def test_cpu_only_colab_defaults_to_the_laptop_profile(monkeypatch):
    monkeypatch.delenv("LRLAB_PROFILE", raising=False)
    assert profiles.get_profile() == "full"
    monkeypatch.setitem(sys.modules, "google.colab", object())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert profiles.get_profile() == "laptop"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert profiles.get_profile() == "full"
    monkeypatch.setenv("LRLAB_PROFILE", "smoke")
    assert profiles.get_profile() == "smoke"


def test_glue_stores_plain_numbers(monkeypatch):
    import myst_nb

    stored = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=True: stored.update({name: (value, display)}))
    course.glue(acc=np.float64(0.91), n=np.int64(5), label="x")
    assert stored == {"acc": (0.91, False), "n": (5, False), "label": ("x", False)}
    assert type(stored["acc"][0]) is float and type(stored["n"][0]) is int


# ------------------------------------------------------------------------------------------------ student edition


def test_student_edition_keeps_every_exercise_and_no_solution(tmp_path):
    import nbformat

    written = course.student_edition(tmp_path / "student")
    assert sorted(p.name for p in written) == sorted(p.name for p in (ROOT / "book").glob("*.ipynb"))
    for path in written:
        student = nbformat.read(path, as_version=4)
        teacher = nbformat.read(ROOT / "book" / path.name, as_version=4)
        text = "\n".join(c.source for c in student.cells)
        assert "{solution" not in text, path.name
        exercises = "\n".join(c.source for c in teacher.cells).count("{exercise}")
        assert text.count("{exercise}") == exercises
        assert exercises > 0 or path.name in ("instructor.ipynb", "appendix_claims.ipynb"), path.name  # every chapter
        teacher_ids = [c.id for c in teacher.cells]
        assert [c.id for c in student.cells] == [i for i in teacher_ids if i in {c.id for c in student.cells}]
        assert student.cells[0].id == teacher.cells[0].id  # nothing before the first exercise is touched
    config = (tmp_path / "student" / "_config.yml").read_text()
    assert '(student edition)"' in config and "execute_notebooks: cache" in config
    assert (tmp_path / "student" / "book" / "references.bib").exists()
    assert (tmp_path / "student" / "_toc.yml").read_text() == (ROOT / "_toc.yml").read_text()


def test_strip_solutions_handles_both_forms():
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("```{exercise}\n:label: a\n\nQ1\n```\n\n````{solution} a\n:class: dropdown\n\n"
                                      "```python\nx = 1\n```\n````\n\nafter"),
        nbformat.v4.new_markdown_cell("```{exercise}\n:label: b\n\nQ2\n```\n\n```{solution-start} b\n:class: dropdown\n```\n"
                                      "hidden text"),
        nbformat.v4.new_code_cell("hidden_code = 1"),
        nbformat.v4.new_markdown_cell("more hidden\n```{solution-end}\n```\nkept after the end"),
        nbformat.v4.new_code_cell("kept = 2"),
    ])
    out = course.strip_solutions(nb)
    assert [c.source for c in out.cells] == [
        "```{exercise}\n:label: a\n\nQ1\n```\n\n\nafter", "```{exercise}\n:label: b\n\nQ2\n```",
        "kept after the end", "kept = 2"]
    assert len(nb.cells) == 5  # the input is not changed
    unfinished = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("```{solution-start} x\n```\n")])
    with pytest.raises(ValueError, match="has no"):
        course.strip_solutions(unfinished)


def test_lrlab_book_extra_brings_every_import_a_chapter_makes():
    """Each module a chapter imports is the standard library's, lrlab's, d2l's (installed by the set-up cell)
    or a distribution named in pyproject.toml's dependencies or its `book` extra."""
    import ast
    import re
    from importlib.metadata import packages_distributions

    pyproject = (ROOT / "pyproject.toml").read_text()
    declared = set()
    for block in re.findall(r"^dependencies = \[(.*?)\]|^book = \[(.*?)\]", pyproject, re.M | re.S):
        for spec in re.findall(r'"([A-Za-z0-9_.-]+)', "".join(block)):
            declared.add(spec.lower().replace("_", "-"))
    providers = packages_distributions()
    missing = {}
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            for node in ast.walk(ast.parse("".join(cell["source"]))):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
                for name in names:
                    top = name.split(".")[0]
                    if top in sys.stdlib_module_names or top in ("lrlab", "d2l"):
                        continue
                    dists = {d.lower().replace("_", "-") for d in providers.get(top, [top])}
                    if not dists & declared:
                        missing.setdefault(top, set()).add(path.name)
    assert not missing, f"imports not brought by lrlab[book]: {missing}"


def test_sync_leaves_the_timing_block_where_the_results_are_missing(tmp_path):
    readme = (ROOT / "README.md").read_text()
    (tmp_path / "README.md").write_text(readme)
    (tmp_path / "_config.yml").write_text((ROOT / "_config.yml").read_text())
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    (tmp_path / "book").mkdir()
    assert course.stale(tmp_path) == []  # no book/results here: the committed block stays as it is
    assert (tmp_path / "README.md").read_text() == readme


def test_the_intros_map_numbers_the_chapters_as_the_book_does():
    """The map in the introduction lists every chapter with the number the navigation gives it (parts
    numbered through the book), in the order of the table of contents."""
    import re

    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [entry["file"].removeprefix("book/") for part in toc["parts"] for entry in part["chapters"]]
    assert all(part.get("numbered") for part in toc["parts"])
    listed = re.findall(r"^(\d+)\. \[[^\]]+\]\(([\w.]+)\.ipynb\)", (ROOT / "book" / "intro.md").read_text(), re.M)
    assert [(int(n), f) for n, f in listed] == list(enumerate(files, start=1))
    captions = [part["caption"] for part in toc["parts"]]
    for caption in captions:
        assert f"**{caption}**" in (ROOT / "book" / "intro.md").read_text()
