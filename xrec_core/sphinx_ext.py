"""A Sphinx extension for the book build: drop script tags that a page would load twice.

With Jupyter Book 1.0.4 and sphinx-thebe 0.3.x, the thebe configuration script is added twice
to every page; its ``const THEBE_JS_URL`` then fails the second time ("Identifier has already
been declared"), a JavaScript error on every page. Removing exact duplicates (same file, same
inline body) keeps the first of each and changes nothing else.

(The same double registration affects sphinx-togglebutton's inline configuration, harmless but removed too.)
"""

from __future__ import annotations

from typing import Any


def _dedupe_scripts(app, pagename: str, templatename: str, context: dict[str, Any], doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple[str, str]] = set()
    unique = []
    for script in scripts:
        attributes = getattr(script, "attributes", {})
        # an inline script's file name is None or "" depending on who added it
        key = (str(getattr(script, "filename", script) or ""), str(attributes.get("body", "")))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def setup(app) -> dict[str, Any]:
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
