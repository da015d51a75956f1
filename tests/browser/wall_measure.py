"""DOM measurements of the wall, run in the page: text that overflows its box, and map labels that overlap.

Shared by the glance tests (tests/browser/test_wall_glance.py) and handy from a Playwright shell."""

from __future__ import annotations

# Every visible element of the wall panels with text of its own: a block whose content is wider than its
# box (scrollWidth > clientWidth), or any element whose rect pokes out of its block parent's rect
# sideways.  (Vertically, the alert list scrolls by design.)  SVG text is the map's: see LABEL_BOXES_JS.
OVERFLOW_JS = r"""
() => {
  const bad = [];
  const blockParent = (n) => { let p = n.parentElement; while (p && getComputedStyle(p).display === 'inline') p = p.parentElement; return p; };
  for (const node of document.querySelectorAll('#wall *')) {
    if (node instanceof SVGElement || node.closest('svg')) continue;
    const own = [...node.childNodes].some((c) => c.nodeType === 3 && c.textContent.trim());
    if (!own || !node.checkVisibility({ checkOpacity: false, checkVisibilityCSS: true })) continue;
    const r = node.getBoundingClientRect();
    if (!r.width) continue;
    const cs = getComputedStyle(node);
    const name = `${node.tagName.toLowerCase()}.${[...node.classList].join('.')} "${node.textContent.trim().slice(0, 40)}"`;
    if (cs.display !== 'inline' && node.scrollWidth > node.clientWidth + 1) {
      bad.push(`${name}: text ${node.scrollWidth}px in a ${node.clientWidth}px box`);
      continue;
    }
    const p = blockParent(node);
    if (!p) continue;
    const pr = p.getBoundingClientRect();
    if (r.left < pr.left - 1 || r.right > pr.right + 1) bad.push(`${name}: [${r.left|0}, ${r.right|0}] outside its parent [${pr.left|0}, ${pr.right|0}]`);
  }
  return bad;
}
"""

# Boxes (screen px) of the visible map labels (a gauge's value label, a district name) and of the
# no-signal marks (the hatched dot of a gauge that lost its signal).
LABEL_BOXES_JS = r"""
() => {
  const out = [];
  const box = (el, kind, id) => { const r = el.getBoundingClientRect(); if (r.width && r.height) out.push({ kind, id, x: r.left, y: r.top, w: r.width, h: r.height, text: el.textContent.trim() }); };
  for (const g of document.querySelectorAll('#rain-map [data-testid="station-mark"]')) {
    const lbl = g.querySelector('.lbl');
    if (lbl && lbl.textContent.trim() && lbl.checkVisibility()) box(lbl, 'label', g.dataset.station);
    if (g.dataset.stale === 'true') box(g.querySelector('.dot'), 'no-signal', g.dataset.station);
  }
  for (const t of document.querySelectorAll('#rain-map .district-label')) if (t.checkVisibility()) box(t, 'district', t.dataset.unit);
  return out;
}
"""


def overlapping(boxes: list[dict]) -> list[tuple[dict, dict]]:
    """Pairs of boxes that overlap (touching edges do not count); a mark and its own label are two boxes too."""
    pairs = []
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            if a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"] and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]:
                pairs.append((a, b))
    return pairs
