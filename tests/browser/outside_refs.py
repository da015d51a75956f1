"""Find every URL a page or asset refers to: HTML src/href/action/poster/srcset,
CSS url() and @import, JS import/export-from, dynamic import(), fetch(),
new WebSocket(), new EventSource(), and any absolute http(s)/ws(s) URL literal."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlparse

# namespace identifiers, not requests
NAMESPACES = ("http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink", "http://www.w3.org/1999/xhtml", "http://www.w3.org/XML/1998/namespace")

HTML_ATTR = re.compile(r"""\b(?:src|href|action|poster|data|formaction)\s*=\s*["']([^"']+)["']""", re.I)
SRCSET = re.compile(r"""\bsrcset\s*=\s*["']([^"']+)["']""", re.I)
CSS_URL = re.compile(r"""url\(\s*["']?([^"')]+)["']?\s*\)""", re.I)
CSS_IMPORT = re.compile(r"""@import\s+["']([^"']+)["']""", re.I)
JS_IMPORT = re.compile(r"""(?:^|[;\s])(?:import|export)\s[^"';]*?\bfrom\s*["']([^"']+)["']|(?:^|[;\s])import\s*["']([^"']+)["']""", re.M)
JS_DYNAMIC = re.compile(r"""\b(?:import|fetch|WebSocket|EventSource|Worker|SharedWorker)\s*\(\s*[`"']([^`"']+)[`"']""")
ABSOLUTE = re.compile(r"""(?:https?|wss?|ftp):\/\/[^\s"'`)<>]+|["'`]\/\/[a-z0-9.-]+\.[a-z]{2,}[^"'`]*""", re.I)
SCRIPT_BLOCK = re.compile(r"<script\b[^>]*>(.*?)</script>", re.I | re.S)
STYLE_BLOCK = re.compile(r"<style\b[^>]*>(.*?)</style>|\bstyle\s*=\s*\"([^\"]*)\"", re.I | re.S)


def references(text: str, kind: str) -> list[str]:
    refs: list[str] = []
    if kind == "html":
        refs += HTML_ATTR.findall(text)
        for s in SRCSET.findall(text):
            refs += [part.strip().split(" ")[0] for part in s.split(",") if part.strip()]
        for block in SCRIPT_BLOCK.findall(text):
            refs += references(block, "js")
        for a, b in STYLE_BLOCK.findall(text):
            refs += references(a or b, "css")
    elif kind == "css":
        refs += CSS_URL.findall(text) + CSS_IMPORT.findall(text)
    elif kind == "js":
        for a, b in JS_IMPORT.findall(text):
            refs.append(a or b)
        refs += JS_DYNAMIC.findall(text)
    refs += [m.strip("\"'`") for m in ABSOLUTE.findall(text) if not m.startswith(NAMESPACES)]
    return [r for r in refs if r and not r.startswith(("#", "data:", "blob:", "javascript:", "mailto:", "about:"))]


def is_outside(ref: str, base: str) -> bool:
    """True when ref (resolved against base) points to another host than base's."""
    if "${" in ref:  # template literal: judge by its scheme/host part only
        ref = ref.split("${", 1)[0] or "/"
    absolute = urljoin(base, ref)
    return urlparse(absolute).hostname != urlparse(base).hostname


def kind_of(url: str, content_type: str = "") -> str:
    path = urlparse(url).path
    if "css" in content_type or path.endswith(".css"):
        return "css"
    if "javascript" in content_type or path.endswith((".js", ".mjs")):
        return "js"
    if "html" in content_type or path.endswith((".html", "/")) or "." not in path.rsplit("/", 1)[-1]:
        return "html"
    return "other"
