// Trend views of the wall: a drawer with three charts, drawn as inline SVG (no library, no CDN).
//   rain:     24 h hyetograph (hourly bars) + cumulative curve of the selected station
//   dossiers: 30 days of received (bars) and on-time rate (line) of the selected unit
//   queue:    today's hourly mean queue (bars) against the usual for that hour (line) of the selected site
// Data: GET /api/trends/{rain|dossiers|queue}/{id} (ioc/trends_api.py), refreshed every REFRESH_MS
// while the drawer is open.  Selection: clicking a station (map mark or rain table row) or a queue
// site is seen here (event delegation); a unit comes from wall.js (showTrend("unit", id)).

import { t, el, fmtNumber, fmtPct, fmtMm, fmtTime, parseTs } from "./common.js";

const REFRESH_MS = 30000;
const NS = "http://www.w3.org/2000/svg";
const PAD = { l: 44, r: 44, t: 14, b: 28 };
let W = 600, H = 220; // the chart area in px, measured before each drawing (no stretched text)
const sel = { rain: null, unit: null, site: null };
const data = { rain: null, unit: null, site: null };
let timer = null;

function s(tag, attrs = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) node.setAttribute(k, String(v));
  for (const c of children.flat()) if (c != null) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function dayLabel(iso) { // "2026-12-03" → "03/12"
  const [, m, d] = iso.split("-");
  return `${d}/${m}`;
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 2.5, 5, 10].map((k) => k * p).find((k) => k >= v);
}

// ------------------------------------------------------------ drawer
function drawer() { return document.getElementById("trends"); }

function ensureDrawer() {
  const box = drawer();
  if (!box || box.childElementCount) return box;
  box.append(
    el("header", { class: "trends-head" },
      el("h2", { "data-i18n": "trends.title", text: t("trends.title") }),
      el("button", { type: "button", class: "trends-close", "data-testid": "trends-close", "aria-label": t("trends.close"),
        text: "×", onclick: () => hide() })),
    el("div", { class: "trends-body" },
      card("rain"), card("unit"), card("site")));
  return box;
}

function card(kind) {
  return el("section", { class: "trend-card", id: `trend-${kind}`, "data-testid": `trend-${kind}`, "data-state": "empty" },
    el("h3", { class: "trend-title" }), el("div", { class: "trend-sub" }), el("div", { class: "trend-chart" }));
}

function hide() {
  const box = drawer();
  if (box) box.hidden = true;
  clearInterval(timer);
  timer = null;
}

/** Show the trend of a station ("rain"), a unit ("unit") or a site ("site"); id null clears that card. */
export function showTrend(kind, id) {
  if (!(kind in sel)) return;
  const box = ensureDrawer();
  if (!box) return;
  sel[kind] = id || null;
  data[kind] = null;
  if (!sel.rain && !sel.unit && !sel.site) { hide(); return; }
  box.hidden = false;
  render();
  refresh(kind);
  if (!timer) timer = setInterval(() => { for (const k of Object.keys(sel)) if (sel[k]) refresh(k); }, REFRESH_MS);
}

const PATHS = { rain: "rain", unit: "dossiers", site: "queue" };

async function refresh(kind) {
  const id = sel[kind];
  if (!id) return;
  try {
    const res = await fetch(`/api/trends/${PATHS[kind]}/${encodeURIComponent(id)}`, { cache: "no-cache" });
    if (sel[kind] !== id) return; // selection moved on meanwhile
    data[kind] = res.ok ? await res.json() : { error: res.status };
  } catch {
    if (sel[kind] === id) data[kind] = { error: "network" };
  }
  render();
}

function render() {
  renderCard("rain", rainChart);
  renderCard("unit", dossierChart);
  renderCard("site", queueChart);
}

function renderCard(kind, draw) {
  const node = document.getElementById(`trend-${kind}`);
  if (!node) return;
  const [title, sub, chart] = node.children;
  const d = data[kind];
  title.textContent = t(`trends.${kind}.title`);
  if (!sel[kind]) {
    node.dataset.state = "empty";
    sub.textContent = t(`trends.${kind}.pick`);
    chart.replaceChildren();
    return;
  }
  if (!d) { node.dataset.state = "loading"; sub.textContent = t("trends.loading"); return; }
  if (d.error) {
    node.dataset.state = "error";
    sub.textContent = t("trends.error");
    chart.replaceChildren();
    return;
  }
  node.dataset.state = "drawn";
  node.dataset.entity = sel[kind];
  chart.replaceChildren(); // measured empty: the space the card leaves it, not the previous drawing's
  measure(chart);
  draw(d, sub, chart);
}

function frame(yMax, yFmt, right) {
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "trend-svg", role: "img", width: W, height: H });
  for (const f of [0, 0.5, 1]) {
    const y = PAD.t + ih * (1 - f);
    svg.append(s("line", { x1: PAD.l, x2: W - PAD.r, y1: y, y2: y, class: "tgrid" }),
      s("text", { x: PAD.l - 6, y: y + 4, class: "taxis taxis-y", "text-anchor": "end" }, yFmt(yMax * f)));
    if (right) svg.append(s("text", { x: W - PAD.r + 6, y: y + 4, class: `taxis taxis-y2 k-${right.cls}` }, right.fmt(right.max * f)));
  }
  return svg;
}

const x0 = PAD.l;
let iw = W - PAD.l - PAD.r, ih = H - PAD.t - PAD.b;
const yOf = (v, max) => PAD.t + ih * (1 - Math.min(v, max) / max);

function measure(chart) {
  W = Math.max(240, Math.round(chart.clientWidth || 600));
  H = Math.max(110, Math.round((chart.clientHeight || 240) - 22)); // room for the legend
  iw = W - PAD.l - PAD.r;
  ih = H - PAD.t - PAD.b;
}

function bars(svg, values, max, cls, testid, label) {
  const n = values.length || 1;
  const bw = iw / n;
  values.forEach((v, i) => {
    const h = v == null ? 0 : ih * Math.min(v, max) / max;
    svg.append(s("rect", { x: (x0 + i * bw + bw * 0.12).toFixed(1), y: (PAD.t + ih - h).toFixed(1),
      width: (bw * 0.76).toFixed(1), height: h.toFixed(2), class: `tbar k-${cls}${v == null ? " no-value" : ""}`,
      "data-testid": testid, "data-value": v ?? "" }, s("title", {}, label(i, v))));
  });
  return bw;
}

function line(svg, points, cls, testid, extra = {}) {
  const pts = points.filter((p) => p[1] != null);
  if (!pts.length) return;
  svg.append(s("path", { d: pts.map(([x, y], i) => `${i ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`).join(""),
    class: `tcurve k-${cls}`, "data-testid": testid, "data-points": pts.length, ...extra }));
  for (const [x, y] of pts) svg.append(s("circle", { cx: x.toFixed(1), cy: y.toFixed(1), r: 2.6, class: `tpt k-${cls}` }));
}

function xLabels(svg, labels, bw, every) {
  labels.forEach((txt, i) => {
    if (i % every) return;
    svg.append(s("text", { x: (x0 + i * bw + bw / 2).toFixed(1), y: H - 8, class: "taxis taxis-x", "text-anchor": "middle" }, txt));
  });
}

function legend(...items) {
  return el("div", { class: "trend-legend" }, items.map(([cls, text]) => el("span", { class: `tlg k-${cls}` }, el("i"), text)));
}

// ------------------------------------------------------------ charts
function rainChart(d, sub, chart) {
  if (!d.has_data) {
    sub.textContent = `${d.name} · ${t("trends.rain.nodata")}`;
    chart.replaceChildren();
    return;
  }
  const vals = d.bars.map((b) => b.rain_mm);
  const total = d.total_mm ?? 0;
  const max = niceMax(Math.max(...vals, 0.1));
  const cmax = niceMax(Math.max(total, 0.1));
  sub.textContent = t("trends.rain.sub", { name: d.name, total: fmtMm(total), time: fmtTime(parseTs(d.watermark)) })
    + (d.stale ? ` · ${t("kpi.stale")}` : "");
  const svg = frame(max, (v) => fmtNumber(v, max < 5 ? 1 : 0), { max: cmax, fmt: (v) => fmtNumber(v, cmax < 5 ? 1 : 0), cls: "cum" });
  const bw = bars(svg, vals, max, "rain", "rain-bar", (i, v) => `${fmtTime(parseTs(d.bars[i].start))}–${fmtTime(parseTs(d.bars[i].end))}: ${fmtMm(v)} mm`);
  line(svg, d.bars.map((b, i) => [x0 + (i + 1) * bw, yOf(b.cumulative_mm, cmax)]), "cum", "rain-curve",
    { "data-end-mm": total });
  xLabels(svg, d.bars.map((b) => fmtTime(parseTs(b.end))), bw, 4);
  chart.replaceChildren(svg, legend(["rain", t("trends.rain.hourly")], ["cum", t("trends.rain.cumulative", { total: fmtMm(total) })]));
  chart.dataset.total = total;
}

function dossierChart(d, sub, chart) {
  const days = d.days ?? [];
  const vals = days.map((x) => x.received);
  const max = niceMax(Math.max(...vals.map((v) => v ?? 0), 1));
  const demo = days.some((x) => x.source === "demo");
  sub.textContent = t("trends.unit.sub", { name: d.name, n: days.length, total: fmtNumber(d.received_total) })
    + (demo ? ` · ${t("trends.demo")}` : "");
  const svg = frame(max, (v) => fmtNumber(v), { max: 1, fmt: (v) => fmtPct(v, 0), cls: "ontime" });
  const bw = bars(svg, vals, max, "received", "dossier-bar", (i, v) => `${dayLabel(days[i].day)}: ${t("trends.unit.received")} ${fmtNumber(v)}, ${t("trends.unit.on_time")} ${fmtPct(days[i].on_time_rate)}`);
  line(svg, days.map((x, i) => [x0 + (i + 0.5) * bw, x.on_time_rate == null ? null : yOf(x.on_time_rate, 1)]), "ontime", "ontime-line");
  xLabels(svg, days.map((x) => dayLabel(x.day)), bw, 5);
  chart.replaceChildren(svg, legend(["received", t("trends.unit.received")], ["ontime", t("trends.unit.on_time")]));
}

const Q_FROM = 7, Q_TO = 18; // office hours shown (the one-stop shops are closed outside them)

function queueChart(d, sub, chart) {
  const hours = (d.hours ?? []).slice(Q_FROM, Q_TO);
  const vals = hours.map((h) => h.waiting_mean);
  const max = niceMax(Math.max(...hours.map((h) => Math.max(h.waiting_mean ?? 0, h.usual ?? 0)), 1));
  sub.textContent = t("trends.site.sub", { name: d.name, n: d.usual_from?.length ?? 0 });
  const svg = frame(max, (v) => fmtNumber(v, max < 5 ? 1 : 0));
  const bw = bars(svg, vals, max, "today", "queue-bar", (i, v) => `${fmtTime(parseTs(hours[i].hour))}: ${fmtNumber(v, 1)} · ${t("trends.site.usual")} ${fmtNumber(hours[i].usual, 1)}`);
  line(svg, hours.map((h, i) => [x0 + (i + 0.5) * bw, h.usual == null ? null : yOf(h.usual, max)]), "usual", "queue-usual");
  xLabels(svg, hours.map((h) => fmtTime(parseTs(h.hour))), bw, 2);
  chart.replaceChildren(svg, legend(["today", t("trends.site.today")], ["usual", t("trends.site.usual_n", { n: d.usual_from?.length ?? 0 })]));
}

// ------------------------------------------------------------ selection
document.addEventListener("click", (ev) => {
  const target = ev.target instanceof Element ? ev.target : null;
  if (!target) return;
  const station = target.closest("[data-station]");
  if (station && !target.closest("#trends")) { showTrend("rain", station.dataset.station); return; }
  const site = target.closest('[data-testid="queue-site"]');
  if (site) { showTrend("site", site.dataset.site); return; }
  if (target.closest("#lang-toggle")) setTimeout(() => { if (drawer() && !drawer().hidden) { render(); relabel(); } }, 0);
});

function relabel() {
  const box = drawer();
  if (!box) return;
  for (const n of box.querySelectorAll("[data-i18n]")) n.textContent = t(n.dataset.i18n);
  box.querySelector(".trends-close")?.setAttribute("aria-label", t("trends.close"));
}

window.iocTrends = { showTrend, sel, data };
