"""Rebuild the README's screenshots of the catalog site from the sample lake in data/lake.

Usage: python scripts/site_screenshots.py [OUT_DIR]   (default: docs/)

Builds the site into a temporary folder, serves it on 127.0.0.1 and photographs the
home page, a model page, a target page and the SQL page (after a query) in Debian's
Chromium (/usr/bin/chromium; never `playwright install`). Nothing leaves the machine.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlsplit

from catalog import Registry
from catalog.site import build_site, make_server

REPO = Path(__file__).resolve().parents[1]
VIEWPORT = {"width": 1280, "height": 800}
# file -> (page, how tall: the target page down to its first rollback command)
SHOTS = {"home.png": ("", 800), "model-page.png": ("models/churn/", 800), "target-page.png": ("targets/prod-eu/", 1080),
         "sql-page.png": ("query/", 800)}


def main(out: Path) -> None:
    import playwright.sync_api as playwright_api

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="catalog-shots-") as tmp:
        lake = Path(tmp) / "lake"
        shutil.copytree(REPO / "data" / "lake", lake)
        with Registry(lake, durable=False) as reg:
            build_site(reg, Path(tmp) / "site")
        server = make_server(Path(tmp) / "site", port=0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        with playwright_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            context = browser.new_context(viewport=VIEWPORT)
            context.route("**/*", lambda route: route.continue_()
                          if urlsplit(route.request.url).hostname == "127.0.0.1" else route.abort())
            page = context.new_page()
            for name, (rel, height) in SHOTS.items():
                page.goto(base + rel)
                page.wait_for_load_state("networkidle")
                if rel == "query/":
                    settled = "s => s.includes(document.getElementById('catalog-sql-status').dataset.state)"
                    page.wait_for_function(settled, arg=["ready", "error"], timeout=120_000)
                    page.click("#catalog-sql-run")
                    page.wait_for_function(settled, arg=["done", "error"], timeout=60_000)
                page.screenshot(path=str(out / name), full_page=True,
                                clip={"x": 0, "y": 0, "width": VIEWPORT["width"], "height": height})
                print(f"{out / name}: {(out / name).stat().st_size // 1000} kB")
            browser.close()
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs")
