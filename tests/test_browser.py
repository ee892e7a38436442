"""The built book as a reader sees it: every chapter page exists, formulas render offline, figures load.

Builds the smoke book with ``make book`` (what CI builds next, so its own build is then served from
jupyter-book's cache) and opens the pages in headless Chromium (Debian's ``chromium`` package; CI
installs it). Chromium runs with its network features off and the pages are read from ``file://``,
so MathJax can only come from the build itself. Skipped, with the reason, where no Chromium is
installed.
"""

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (Debian: apt-get "
                                                         "install chromium); .ci/run installs it")


@pytest.fixture(scope="module")
def book():
    """The smoke book, built by `make book` into _build/html."""
    env = {**os.environ, "LRLAB_PROFILE": "smoke"}
    built = subprocess.run(["make", "book"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return HTML


def chapter_pages():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"]] + [entry["file"] for part in toc["parts"] for entry in part["chapters"]]


def render(page, tmp_path: Path, budget_ms: int = 15000) -> str:
    """The page's DOM after its scripts ran (MathJax typesets on load); ``page`` a file or a URL."""
    url = page.as_uri() if isinstance(page, Path) else page
    out = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", f"--virtual-time-budget={budget_ms}", "--dump-dom", url],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "<html" in out.stdout, out.stderr[-2000:]
    return out.stdout


class Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.sources.append(dict(attrs).get("src", ""))


def test_every_chapter_page_exists_with_its_title(book):
    for page in chapter_pages():
        html = book / f"{page}.html"
        assert html.is_file(), f"{html} was not built"
        assert "<h1>" in html.read_text(encoding="utf-8") or "<h1 " in html.read_text(encoding="utf-8"), page


@pytest.mark.parametrize("page", ["book/03_sqrt_factor", "book/05_cosine_warmup", "book/09_torch_schedulers"])
def test_formulas_render_offline(book, page, tmp_path):
    static = (book / f"{page}.html").read_text(encoding="utf-8")
    assert "cdn.jsdelivr" not in static and "_static/mathjax/tex-chtml.js" in static
    dom = render(book / f"{page}.html", tmp_path)
    rendered = len(re.findall(r"<mjx-container", dom))
    assert rendered >= 5, f"{page}: {rendered} formulas typeset by MathJax"
    assert "\\(" not in re.sub(r"<(script|pre|code)[\s\S]*?</\1>", "", dom)  # no raw TeX left in the text


@pytest.mark.parametrize("page", ["book/02_why_schedule", "book/08_mnist_step_cosine", "book/10_comparison"])
def test_figures_load(book, page, tmp_path):
    dom = render(book / f"{page}.html", tmp_path)
    parser = Images()
    parser.feed(dom)
    figures = [src for src in parser.sources if "_images/" in src or src.startswith("data:image/png")]
    assert len(figures) >= 3, f"{page}: only {len(figures)} figures"
    for src in figures:
        if src.startswith("data:"):
            continue
        path = (book / page).parent / src
        assert path.is_file(), f"{page}: {src} is missing"
        assert path.read_bytes()[:8] in (b"\x89PNG\r\n\x1a\n",) or path.suffix == ".svg", src


def test_glued_verdicts_read_as_sentences(book):
    """A verdict glued into prose (``lrlab.stats.PairedDifference.describe``) reads as a sentence whatever the
    data say: "shows no difference shown" or "is no difference shown" means the prose put a verb before it."""
    bad = re.compile(r"\b(shows?|is|are|gives|ends?|by|was)\s+no difference shown")
    for page in chapter_pages():
        text = re.sub(r"<[^>]+>", "", (book / f"{page}.html").read_text(encoding="utf-8"))
        for m in bad.finditer(text):
            pytest.fail(f"{page}: '...{text[max(0, m.start() - 80):m.end()]}'")
