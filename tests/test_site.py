"""The published site: built from smoke-scale executed notebooks, opened in headless Chromium.

Checks that the landing page, the scorecard, every chapter and the reference pages render with
their tables and figures (every image loads), that no internal link is broken, and saves a
screenshot of each page under ``test-artifacts/site/`` (or ``$XREC_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import os
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from xrec_core.papers import PAPERS

REPO = Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.refs.append(("a", a["href"]))
        if tag in ("img", "script") and a.get("src"):
            self.refs.append((tag, a["src"]))
        if tag == "link" and a.get("href") and a.get("rel") and "stylesheet" in a.get("rel", ""):
            self.refs.append(("link", a["href"]))


@pytest.fixture(scope="module")
def site(smoke_run, smoke_outputs, data_dir, tmp_path_factory):
    from xrec_core.book import build_book

    for key in PAPERS:
        smoke_run(key)
    out = tmp_path_factory.mktemp("site")
    return build_book(scale="smoke", notebooks_dir=smoke_outputs / "notebooks" / "smoke",
                      results_dirs=[smoke_outputs / "results"], out_dir=out, data_dir=data_dir)


@pytest.mark.slow
def test_site_has_no_broken_internal_links(site):
    broken = []
    # _static/*.html are the theme's template fragments (unrendered Jinja), not pages of the site
    pages = [p for p in site.rglob("*.html") if "_static" not in p.relative_to(site).parts]
    assert len(pages) >= 10
    for page in pages:
        parser = _Links()
        parser.feed(page.read_text(errors="replace"))
        for tag, ref in parser.refs:
            url = urlparse(ref)
            if url.scheme or ref.startswith(("#", "mailto:", "//")) or not url.path:
                continue
            target = (page.parent / unquote(url.path)).resolve()
            if not target.exists():
                broken.append(f"{page.relative_to(site)} -> {ref}")
    assert not broken, "broken internal links:\n" + "\n".join(broken[:30])


@pytest.mark.slow
def test_pages_render_in_chromium_with_tables_and_figures(site):
    chromium = _chromium()
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; `make test` installs it (scripts/install_chromium.sh)")
        pytest.skip("chromium not installed (run scripts/install_chromium.sh)")
    from playwright.sync_api import sync_playwright

    artifacts = Path(os.environ.get("XREC_TEST_ARTIFACTS", REPO / "test-artifacts")) / "site"
    artifacts.mkdir(parents=True, exist_ok=True)
    # page -> (min tables, min images)
    # the root index.html only redirects to the landing page
    redirect = (site / "index.html").read_text()
    assert 'url=book/intro.html' in redirect and (site / "book" / "intro.html").exists()
    expectations = {"book/intro.html": (2, 0), "book/scorecard.html": (2, 1),
                    "book/datasets.html": (2, 0), "book/methods.html": (1, 0), "book/baselines.html": (0, 0),
                    "book/benchmarks.html": (0, 0)}
    expectations.update({f"book/chapters/{key}.html": (2, 1) for key in PAPERS})
    problems = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        for rel, (min_tables, min_images) in expectations.items():
            path = site / rel
            if not path.exists():
                problems.append(f"{rel}: missing")
                continue
            errors.clear()
            page.goto(path.as_uri(), wait_until="load")
            title = page.title()
            n_tables = page.evaluate("document.querySelectorAll('main table, article table').length")
            images = page.evaluate(
                "Array.from(document.querySelectorAll('main img, article img')).map(i => [i.src, i.complete && i.naturalWidth > 0])")
            not_loaded = [src for src, ok in images if not ok]
            page.screenshot(path=str(artifacts / (rel.replace("/", "__").replace(".html", ".png"))), full_page=True)
            if not title:
                problems.append(f"{rel}: no title")
            if n_tables < min_tables:
                problems.append(f"{rel}: {n_tables} tables < {min_tables}")
            if len(images) < min_images:
                problems.append(f"{rel}: {len(images)} images < {min_images}")
            if not_loaded:
                problems.append(f"{rel}: images not loaded {not_loaded}")
            if errors:
                problems.append(f"{rel}: javascript errors {errors}")
        browser.close()
    assert not problems, "\n".join(problems)


@pytest.mark.slow
def test_scorecard_is_built_from_records(site):
    text = (site / "book" / "scorecard.html").read_text()
    for key in PAPERS:
        assert PAPERS[key].title.split(":")[0][:20] in text
    assert "smoke scale (not a reproduction)" in text or "reproduced" in text
    landing = (site / "book" / "intro.html").read_text()
    for verdict in ("claims: holds", "claims: fails", "claims: untestable"):
        assert verdict in landing, f"the landing page lacks the claim counts ({verdict})"
