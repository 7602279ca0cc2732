"""`make book` builds the chapters into a static site with their committed outputs.

Builds once per test session into a temporary folder through the Makefile's own `book`
recipe (`-o` so that it installs nothing), then reads the pages as a browser would get them.
"""

import base64
import hashlib
import html
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(sys.prefix)
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# outputs the book shows as something else than their PNG (see docs/book/conf.py)
RICHER_THAN_PNG = {"text/html", "application/javascript", "image/svg+xml"}

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    importlib.util.find_spec("myst_nb") is None
    or importlib.util.find_spec("sphinx_book_theme") is None
    or shutil.which("make") is None,
    reason="the book's tools are not installed here (make book or make test installs them)",
)]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("book")
    result = subprocess.run(
        ["make", "--no-print-directory", "-o", f"{VENV}/.installed-book+test", "book",
         f"VENV={VENV}", f"BOOK={out}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ERROR" not in result.stderr, result.stderr
    return out / "html"


def _pngs(nb) -> list[bytes]:
    """The PNG figures the book must show: image outputs with nothing richer beside them."""
    return [base64.b64decode(o["data"]["image/png"])
            for cell in nb.cells for o in cell.get("outputs", [])
            if "image/png" in o.get("data", {}) and not RICHER_THAN_PNG & set(o["data"])]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_chapter_has_a_page_with_its_figures(site, path):
    page_path = site / f"{path.stem}.html"
    assert page_path.exists(), f"no page for {path.name}"
    page = page_path.read_text(encoding="utf-8")
    nb = nbformat.read(path, as_version=4)
    title = nb.cells[0].source.splitlines()[0].lstrip("# ").strip()
    assert title in html.unescape(page), f"{page_path.name} lacks its title {title!r}"
    # each figure is the committed one, byte for byte, in a file that exists
    for png in _pngs(nb):
        name = hashlib.sha256(png).hexdigest() + ".png"
        assert f'src="_images/{name}"' in page, f"{path.name}: a figure is missing"
        assert (site / "_images" / name).read_bytes() == png
    for src in re.findall(r'<img[^>]* src="([^"]+)"', page):
        if not src.startswith(("http://", "https://", "data:image/")):
            assert (site / src).exists(), f"{page_path.name}: broken image {src}"


def test_outputs_are_the_committed_ones_not_a_new_run(site):
    # a training line carries a speed that no second run repeats exactly
    nb = nbformat.read(ROOT / "notebooks" / "01_lenet.ipynb", as_version=4)
    speeds = [line for cell in nb.cells for o in cell.get("outputs", [])
              for line in o.get("text", "").splitlines() if "examples/sec" in line]
    assert speeds, "01_lenet has no committed training output to compare"
    page = html.unescape((site / "01_lenet.html").read_text(encoding="utf-8"))
    assert all(line in page for line in speeds)


def test_the_front_page_lists_every_chapter_and_search_works(site):
    index = (site / "index.html").read_text(encoding="utf-8")
    for path in NOTEBOOKS:
        assert f'href="{path.stem}.html"' in index, f"{path.stem} missing from the list"
    assert (site / "search.html").exists()
    search_index = (site / "searchindex.js").read_text(encoding="utf-8")
    assert "googlenet" in search_index.lower()


def test_the_glossary_declares_a_cjk_font(site):
    page = (site / "04_nin.html").read_text(encoding="utf-8")
    assert "汇聚层" in page  # the Chinese terms arrive as text, not mojibake
    css = re.search(r'href="(_static/cjk\.css)[^"]*"', page)
    assert css, "cjk.css is not linked"
    assert '"Noto Sans CJK SC"' in (site / css.group(1)).read_text(encoding="utf-8")


def test_pages_load_no_widget_scripts_from_a_cdn(site):
    for page_path in site.glob("[0-9]*.html"):
        page = page_path.read_text(encoding="utf-8")
        assert "html-manager" not in page and "require.min.js" not in page, page_path.name


def _devtools():
    """tools/screenshot_book.py's DevTools client (a maintainer tool, not a package)."""
    spec = importlib.util.spec_from_file_location("screenshot_book",
                                                  ROOT / "tools" / "screenshot_book.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.DevTools


@pytest.mark.skipif(shutil.which("chromium") is None,
                    reason="no chromium here (apt-get install chromium fonts-noto-cjk)")
def test_pages_render_in_headless_chromium(site, tmp_path):
    chrome = _devtools()(shutil.which("chromium"), str(tmp_path))
    try:
        target = chrome.send("Target.createTarget", url="about:blank")["targetId"]
        session = chrome.send("Target.attachToTarget", targetId=target,
                              flatten=True)["sessionId"]
        chrome.send("Page.enable", session)
        for path in NOTEBOOKS:
            chrome.send("Page.navigate", session, url=(site / f"{path.stem}.html").as_uri())
            chrome.wait_for("Page.loadEventFired")
            # every local figure decodes (the badges are remote: offline they cannot)
            broken = chrome.send("Runtime.evaluate", session, returnByValue=True, expression=(
                "[...document.images].filter(i => i.src.startsWith('file:') &&"
                " !(i.complete && i.naturalWidth > 0)).map(i => i.src)"))["result"]["value"]
            assert broken == [], f"{path.stem}: images that do not load: {broken}"
        # which font draws the glossary's Chinese terms: the one the site declares
        if subprocess.run("fc-list | grep -q 'Noto Sans CJK'", shell=True).returncode:
            pytest.skip("fonts-noto-cjk not installed: cannot check the CJK font")
        chrome.send("Page.navigate", session, url=(site / "04_nin.html").as_uri())
        chrome.wait_for("Page.loadEventFired")
        chrome.send("DOM.enable", session)
        chrome.send("CSS.enable", session)
        root = chrome.send("DOM.getDocument", session)["root"]["nodeId"]
        cell = chrome.send("DOM.querySelector", session, nodeId=root,
                           selector="#glossary tbody tr td:nth-child(2)")["nodeId"]
        fonts = chrome.send("CSS.getPlatformFontsForNode", session, nodeId=cell)["fonts"]
        assert any(f["familyName"] == "Noto Sans CJK SC" for f in fonts), fonts
    finally:
        chrome.close()


def test_a_widget_shows_its_static_snapshot_not_its_repr(tmp_path):
    """A panel saved with a snapshot (text/html) beside its widget view reads as the snapshot."""
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

    src = tmp_path / "src"
    src.mkdir()
    (src / "index.md").write_text("# Book\n\n```{toctree}\n01_panel\n```\n")
    panel = new_output("display_data", data={
        "application/vnd.jupyter.widget-view+json": {"model_id": "0" * 32,
                                                     "version_major": 2, "version_minor": 0},
        "text/html": "<div class='snapshot'><b>Training panel</b> as last drawn</div>",
        "text/plain": "VBox(children=(HTML(value='<b>Training panel</b>'),))",
    })
    nb = new_notebook(cells=[new_markdown_cell("# 1. Panel"),
                             new_code_cell("panel", outputs=[panel])])
    nbformat.write(nb, src / "01_panel.ipynb")
    result = subprocess.run([str(VENV / "bin" / "sphinx-build"), "-q", "-b", "html",
                             "-c", str(ROOT / "docs" / "book"), str(src), str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "out" / "01_panel.html").read_text(encoding="utf-8")
    assert "<b>Training panel</b> as last drawn" in page
    assert "VBox(children" not in page
