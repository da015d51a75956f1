// Rain map drawn as SVG from the catalog coordinates only (no tiles, no
// outside host).  Equirectangular projection scaled by cos(latitude), a
// rounded hull of the stations as the province area, district labels at the
// centroid of their stations, a 0.1° graticule and a scale bar.  Labels are
// placed so that none overlaps another, a station dot or a no-signal mark
// (placeLabels); those that cannot be placed, the least important, are hidden.

import { t, el, fmtMm, entityName } from "./common.js";

export const RAIN_CLASSES = ["light", "rain", "moderate", "heavy", "very_heavy"];
const NS = "http://www.w3.org/2000/svg";
const W = 1000;

function s(tag, attrs = {}, ...kids) {
  const n = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) n.setAttribute(k, v);
  for (const c of kids) if (c != null) n.append(c);
  return n;
}

function hull(points) {
  const p = [...points].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  if (p.length < 3) return p;
  const cross = (o, a, b) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
  const lower = [];
  for (const q of p) { while (lower.length >= 2 && cross(lower.at(-2), lower.at(-1), q) <= 0) lower.pop(); lower.push(q); }
  const upper = [];
  for (const q of p.reverse()) { while (upper.length >= 2 && cross(upper.at(-2), upper.at(-1), q) <= 0) upper.pop(); upper.push(q); }
  return lower.slice(0, -1).concat(upper.slice(0, -1));
}

const pathOf = (pts) => pts.length ? "M" + pts.map((p) => `${p[0].toFixed(1)},${p[1].toFixed(1)}`).join("L") + "Z" : "";

export function renderMap(svg, cat) {
  const pts = cat.stations.filter((x) => Number.isFinite(x.lat) && Number.isFinite(x.lon));
  svg.replaceChildren();
  if (!pts.length) {
    svg.setAttribute("viewBox", "0 0 1000 600");
    svg.append(s("text", { x: 500, y: 300, "text-anchor": "middle", class: "map-empty" }, t("rain.no_stations")));
    return;
  }
  let minLat = Math.min(...pts.map((p) => p.lat)), maxLat = Math.max(...pts.map((p) => p.lat));
  let minLon = Math.min(...pts.map((p) => p.lon)), maxLon = Math.max(...pts.map((p) => p.lon));
  const padDeg = Math.max(0.03, 0.1 * Math.max(maxLat - minLat, maxLon - minLon));
  minLat -= padDeg; maxLat += padDeg; minLon -= padDeg; maxLon += padDeg;
  const k = Math.cos(((minLat + maxLat) / 2) * Math.PI / 180);
  const spanX = (maxLon - minLon) * k, spanY = maxLat - minLat;
  const scale = W / Math.max(spanX, spanY * 1.0);
  const width = spanX * scale, height = spanY * scale;
  const proj = (lat, lon) => [(lon - minLon) * k * scale, (maxLat - lat) * scale];
  svg.setAttribute("viewBox", `0 0 ${width.toFixed(0)} ${height.toFixed(0)}`);
  svg.dataset.scale = String(scale);
  const unit = Math.max(width, height) / 1000; // marks sized relative to the map
  svg.style.setProperty("--u", unit);
  svg.classList.toggle("dense", pts.length > 25); // many stations: drop the 3 h sub-labels

  const defs = s("defs", {},
    s("pattern", { id: "hatch", width: 8 * unit, height: 8 * unit, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" },
      s("rect", { width: 8 * unit, height: 8 * unit, fill: "#2a313c" }),
      s("line", { x1: 0, y1: 0, x2: 0, y2: 8 * unit, stroke: "#8b96a8", "stroke-width": 3.2 * unit })),
    s("radialGradient", { id: "glow" }, s("stop", { offset: "0%", "stop-color": "#ffffff", "stop-opacity": "0.18" }), s("stop", { offset: "100%", "stop-color": "#ffffff", "stop-opacity": "0" })));
  svg.append(defs);

  // graticule
  const grid = s("g", { class: "graticule" });
  const step = (maxLat - minLat) > 1.5 ? 0.5 : 0.1;
  for (let lat = Math.ceil(minLat / step) * step; lat < maxLat; lat += step) {
    const [, y] = proj(lat, minLon);
    grid.append(s("line", { x1: 0, x2: width, y1: y, y2: y }));
    grid.append(s("text", { x: 6 * unit, y: y - 4 * unit, class: "grat-label" }, `${lat.toFixed(1)}°N`));
  }
  for (let lon = Math.ceil(minLon / step) * step; lon < maxLon; lon += step) {
    const [x] = proj(minLat, lon);
    grid.append(s("line", { x1: x, x2: x, y1: 0, y2: height }));
    grid.append(s("text", { x: x + 4 * unit, y: height - 6 * unit, class: "grat-label" }, `${lon.toFixed(1)}°E`));
  }
  svg.append(grid);

  // province area: rounded hull (fat stroke with round joins = buffered hull)
  const xy = pts.map((p) => proj(p.lat, p.lon));
  const area = pathOf(hull(xy));
  svg.append(s("path", { d: area, class: "province-area", "stroke-width": 70 * unit }));
  svg.append(s("path", { d: area, class: "province-fill" }));

  // districts
  const byDistrict = new Map();
  pts.forEach((p, i) => { if (p.district) { if (!byDistrict.has(p.district)) byDistrict.set(p.district, []); byDistrict.get(p.district).push(xy[i]); } });
  const dg = s("g", { class: "districts" });
  const labels = s("g", { class: "district-labels" });
  for (const [d, list] of byDistrict) {
    const h = hull(list);
    const cx = list.reduce((a, p) => a + p[0], 0) / list.length, cy = list.reduce((a, p) => a + p[1], 0) / list.length;
    const name = entityName(cat, d).replace(/^(Huyện|Thành phố|Thị xã|Quận)\s+/u, "").replace(/\s+(District|City|Town)$/u, "");
    labels.append(s("text", { x: cx, y: cy - 30 * unit, class: "district-label", "text-anchor": "middle", "data-unit": d },
      s("title", {}, entityName(cat, d)), name.toUpperCase()));
  }
  svg.append(dg, labels);

  // scale bar (10 km)
  const km = 10, pxPerKm = scale / 111.32;
  const sb = s("g", { class: "scalebar", transform: `translate(${width - (km * pxPerKm) - 24 * unit},${24 * unit})` },
    s("rect", { width: km * pxPerKm, height: 5 * unit }), s("text", { x: km * pxPerKm / 2, y: 24 * unit, "text-anchor": "middle" }, `${km} km`));
  const north = s("g", { class: "north", transform: `translate(${24 * unit},${34 * unit})` },
    s("path", { d: `M0,${-16 * unit}L${8 * unit},${10 * unit}L0,${4 * unit}L${-8 * unit},${10 * unit}Z` }), s("text", { y: 30 * unit, "text-anchor": "middle" }, "N"));
  svg.append(sb, north);

  // stations
  const marks = s("g", { class: "stations" });
  pts.forEach((p, i) => {
    const [x, y] = xy[i];
    const g = s("g", { class: "station nodata", transform: `translate(${x.toFixed(1)},${y.toFixed(1)})`, "data-testid": "station-mark", "data-station": p.id, "data-stale": "false", "data-has-data": "false" },
      s("title", {}, p.name),
      s("circle", { class: "pulse", r: 14 * unit }),
      s("circle", { class: "risk-ring", r: 20 * unit }),
      s("circle", { class: "dot", r: 13 * unit }),
      s("g", { class: "lbl" },
        s("text", { class: "val", y: 36 * unit, "text-anchor": "middle" }, ""),
        s("text", { class: "sub", y: 54 * unit, "text-anchor": "middle" }, "")));
    marks.append(g);
  });
  svg.append(marks);
  svg.dataset.width = String(width);
  svg.dataset.height = String(height);
  svg._labelSig = null;
}

// Dot radius (map units) by rain class: a wetter gauge is also a bigger dot, whatever the colour.
const DOT_R = { light: 10, rain: 11.5, moderate: 13, heavy: 15, very_heavy: 17 };

/** Update the station marks from [{id, has, stale, v1, v3, v24, cls, risk, alerting}]. */
export function updateMap(svg, states) {
  const byId = new Map(states.map((x) => [x.id, x]));
  for (const g of svg.querySelectorAll('[data-testid="station-mark"]')) {
    const st = byId.get(g.dataset.station);
    if (!st) continue;
    const cls = ["station"];
    let val = "", sub = "";
    if (st.stale) { cls.push("stale"); val = t("rain.no_signal_short"); sub = ""; }
    else if (!st.has) { cls.push("nodata"); val = "—"; }
    else {
      cls.push(`rc-${st.cls ?? "none"}`);
      val = st.v24 != null ? `${fmtMm(st.v24)}` : "—";
      sub = st.v3 != null && st.v3 >= 1 ? `3h ${fmtMm(st.v3)}` : "";
    }
    if (st.risk) cls.push(`risk-${st.risk}`);
    if (st.alerting) cls.push("alerting");
    const c = cls.join(" ");
    if (g.getAttribute("class") !== c) g.setAttribute("class", c);
    g.dataset.stale = st.stale ? "true" : "false";
    g.dataset.hasData = st.has ? "true" : "false";
    g.dataset.class = st.cls ?? "";
    g.dataset.risk = st.risk ?? "";
    g.dataset.rain24h = st.v24 ?? "";
    g.dataset.rain3h = st.v3 ?? "";
    g.dataset.rain1h = st.v1 ?? "";
    const dot = g.querySelector(".dot");
    const r = String((st.has && !st.stale ? DOT_R[st.cls] ?? 13 : 13) * Number(svg.style.getPropertyValue("--u") || 1));
    if (dot.getAttribute("r") !== r) dot.setAttribute("r", r);
    g._priority = st.stale ? 1e9 : (st.risk ?? 0) * 1e6 + (st.alerting ? 5e5 : 0) + (st.has && st.v24 > 0 ? 1e3 + st.v24 : 0);
    const [vt, stx] = g.querySelectorAll("text");
    if (vt.textContent !== val) vt.textContent = val;
    if (stx.textContent !== sub) stx.textContent = sub;
    const title = g.querySelector("title");
    const name = title.textContent.split("\n")[0];
    title.textContent = `${name}\n1h ${fmtMm(st.v1)} · 3h ${fmtMm(st.v3)} · 24h ${fmtMm(st.v24)} mm${st.stale ? "\n" + t("rain.no_signal") : ""}`;
  }
  placeLabels(svg);
}

const overlaps = (a, b) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;

/**
 * Greedy label placement: labels in priority order (no-signal first, then risk level, alerting,
 * rain amount; district names after the gauges with rain; gauges with nothing to report last), each
 * at the first of its candidate positions that stays on the map and clear of the dots, the no-signal
 * marks and the labels already placed; a label with no free position is hidden.  Runs only when a
 * label's text or the layout changed.
 */
function placeLabels(svg) {
  const marks = [...svg.querySelectorAll('[data-testid="station-mark"]')];
  const districts = [...svg.querySelectorAll(".district-label")];
  if (!marks.length || !svg.getBoundingClientRect().width) return; // not drawn (another panel is full screen)
  const single = document.body.classList.contains("single");
  const sig = single + "|" + marks.map((g) => `${g.getAttribute("class")}|${g.querySelector(".lbl").textContent}`).join(";");
  if (svg._labelSig === sig) return;
  svg._labelSig = sig;
  const u = Number(svg.style.getPropertyValue("--u") || 1);
  const W = Number(svg.dataset.width), H = Number(svg.dataset.height);
  const pad = 3 * u;
  const grow = (b, m) => ({ x: b.x - m, y: b.y - m, w: b.w + 2 * m, h: b.h + 2 * m });
  const placed = [];
  // every dot is an obstacle (a no-signal mark is its dot); ring included
  const dots = marks.map((g) => {
    const [x, y] = g.getAttribute("transform").match(/-?[\d.]+/g).map(Number);
    const r = Math.max(Number(g.querySelector(".dot").getAttribute("r")), g.classList.toString().includes("risk-") ? 23 * u : 0);
    return { g, x, y, box: { x: x - r, y: y - r, w: 2 * r, h: 2 * r }, r };
  });
  for (const d of dots) placed.push(d.box);
  const fits = (b) => b.x >= 0 && b.y >= 0 && b.x + b.w <= W && b.y + b.h <= H && !placed.some((p) => overlaps(grow(b, pad / 2), p));
  const jobs = [];
  for (const d of dots) {
    const lbl = d.g.querySelector(".lbl");
    lbl.classList.remove("lbl-hidden");
    lbl.removeAttribute("transform");
    if (!lbl.textContent.trim()) { lbl.classList.add("lbl-hidden"); continue; }
    const bb = lbl.getBBox();
    if (!bb.width) continue;
    const R = d.r + pad, w = bb.width, h = bb.height;
    // top-left corners of the label box, relative to the station: below, above, right, left, then the diagonals
    const spots = [[-w / 2, R], [-w / 2, -R - h], [R, -h / 2], [-R - w, -h / 2], [R * 0.7, R * 0.7], [-R * 0.7 - w, R * 0.7],
      [R * 0.7, -R * 0.7 - h], [-R * 0.7 - w, -R * 0.7 - h]];
    jobs.push({ prio: d.g._priority ?? 0, el: lbl, bb, spots: spots.map(([tx, ty]) => [d.x + tx, d.y + ty]), shift: true, at: [d.x, d.y] });
  }
  for (const el of districts) {
    el.classList.remove("lbl-hidden");
    el.removeAttribute("transform");
    const bb = el.getBBox();
    const offs = [[0, 0], [0, -24 * u], [0, 24 * u], [-40 * u, 0], [40 * u, 0], [0, -48 * u], [0, 48 * u]];
    jobs.push({ prio: 900, el, bb, spots: offs.map(([dx, dy]) => [bb.x + dx, bb.y + dy]), shift: false });
  }
  jobs.sort((a, b) => b.prio - a.prio);
  for (const j of jobs) {
    const { w, h } = { w: j.bb.width, h: j.bb.height };
    const spot = j.spots.find(([x, y]) => fits({ x, y, w, h }));
    if (!spot) { j.el.classList.add("lbl-hidden"); continue; }
    const box = { x: spot[0], y: spot[1], w, h };
    placed.push(grow(box, pad / 2));
    // the label's own coordinates: a station's are relative to its mark, a district's to the map
    const dx = spot[0] - j.bb.x - (j.shift ? j.at[0] : 0), dy = spot[1] - j.bb.y - (j.shift ? j.at[1] : 0);
    if (Math.abs(dx) > 0.01 || Math.abs(dy) > 0.01) j.el.setAttribute("transform", `translate(${dx.toFixed(1)},${dy.toFixed(1)})`);
  }
}

export function renderLegend(box) {
  box.replaceChildren(
    el("div", { class: "lg-title", text: t("legend.rain_24h") }),
    el("div", { class: "lg-row" }, RAIN_CLASSES.map((c) => el("span", { class: `lg rc-${c}` }, el("i"), t(`rainclass.${c}`)))),
    el("div", { class: "lg-title", text: t("legend.risk") }),
    el("div", { class: "lg-row" }, [1, 2, 3, 4, 5].map((n) => el("span", { class: `lg risk-${n}` }, el("i", { class: "ring" }), t("risk.short", { n })))),
    el("div", { class: "lg-row" },
      el("span", { class: "lg lg-stale" }, el("i"), t("rain.no_signal")),
      el("span", { class: "lg lg-nodata" }, el("i"), t("rain.no_data"))),
  );
}
