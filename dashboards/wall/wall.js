// IOC wall display.  Reads /api/catalog once, then lives on /ws (see live.js).
// Routes: "/" = all panels; "/wall/<panel>" = one panel full screen
// (kpi, ranking, rain, queues, alerts).  Query options:
//   ?lang=vi|en  ?unit=<unit id>  ?period=day|month|year
//   ?rotate=<s>  cycle the panels full screen every s seconds ("/" only)
//   ?stall=<s>   seconds without watermark progress before "stale" (default 300)

import {
  loadI18n, t, ruleName, getLang, setLang, applyI18n, el, fmtNumber, fmtPct, fmtMm, fmtTime, fmtAge, fmtDuration,
  parseTs, entityName, shortName, abbreviate, unitKind, fitText, indexCatalog, localDate, safeGet, safeSet, SEVERITY_ORDER,
} from "./common.js";
import { Store, LiveConnection, FEEDS } from "./live.js";
import { renderMap, updateMap, renderLegend, RAIN_CLASSES } from "./map.js";
import * as sound from "./sound.js";
import { showTrend } from "./trends.js";

const PANELS = ["kpi", "ranking", "rain", "queues", "alerts"];
const KPIS = [
  { key: "on_time", name: "dossier_on_time_rate", target: "on_time_rate", kind: "rate" },
  { key: "online", name: "dossier_online_rate", target: "online_rate", kind: "rate" },
  { key: "digitization", name: "dossier_digitization_rate", target: "digitization_rate", kind: "rate" },
  { key: "online_payment", name: "dossier_online_payment_rate", target: "online_payment_rate", kind: "rate" },
  { key: "overdue", name: "dossier_overdue_open", kind: "overdue", window: "now" },
  { key: "received", name: "dossier_received", kind: "count" },
];
// Overdue tile: 0 green; up to this share of open dossiers yellow; above red.
const OVERDUE_YELLOW_SHARE = 0.02;
const FOCUS_MS = 30000;
// text that must fit its box: shrunk (fitText) rather than wrapped or cut
const FIT_SELECTOR = "#wall .fit, #wall .rank-head > span, #wall .queue small, #wall .queue b, #wall .rank-row .rate";
const DENIED_RETRY_MS = 60000;

const params = new URLSearchParams(location.search);
const route = location.pathname.replace(/\/+$/, "");
const singlePanel = route.startsWith("/wall/") ? route.slice(6) : null;

const store = new Store();
const ui = {
  catalog: null,
  period: ["day", "month", "year"].includes(params.get("period")) ? params.get("period") : "year",
  drill: null, // unit whose children the ranking lists
  selected: params.get("unit") || safeGet(localStorage, "ioc.unit") || null,
  connState: "reconnecting",
  connInfo: {},
  denied: null, // {code, reason} while the server refuses this screen's session
  seenAlerts: new Set(), // alert ids (+ started) already cued
  flashUntil: new Map(), // alert id → ms
  focusUntil: 0,
  cues: 0,
  rotateIdx: 0,
  holdRotationUntil: 0,
  toast: null,
};
let conn = null;
let dirty = true;

// ------------------------------------------------------------------ boot
async function boot() {
  await loadI18n();
  document.body.classList.toggle("single", !!singlePanel && PANELS.includes(singlePanel));
  if (singlePanel && PANELS.includes(singlePanel)) document.body.dataset.panel = singlePanel;
  wireChrome();
  applyI18n();
  renderChrome();
  ui.catalog = await fetchCatalog();
  const cat = ui.catalog;
  ui.drill = cat.rootId;
  if (ui.selected && !cat.unitById.has(ui.selected)) ui.selected = null;
  document.getElementById("province-name").textContent = entityName(cat, cat.rootId) || cat.name || cat.province;
  showDemoSpeed(); // "demo ×N" when the demo races ahead of the wall clock (GET /healthz, ioc/demo.py)
  document.title = `IOC — ${cat.name || cat.province}`;
  renderMap(document.getElementById("rain-map"), cat);
  conn = new LiveConnection({
    stallMs: (Number(params.get("stall")) || 300) * 1000,
    watermark: () => store.watermark(),
    onSnapshot: (records, first) => {
      const prev = store.replace(records);
      cueNewAlerts(records.filter((r) => r.type === "alert"), first ? null : prev);
      dirty = true;
    },
    onDelta: (records) => {
      const alerts = records.filter((r) => r.type === "alert");
      const prev = new Map(alerts.map((a) => [a.id, store.alerts.get(a.id)]));
      store.upsert(records);
      cueNewAlerts(alerts, prev);
      dirty = true;
    },
    onHeartbeat: (msg) => {
      const st = parseTs(msg.server_time);
      if (st != null) { store.serverTime = st; store.serverTimeAt = Date.now(); }
    },
    onState: (state, info) => { ui.connState = state; ui.connInfo = info; renderConn(); },
    onDenied: (denied) => { ui.denied = denied; renderConn(); },
  });
  window.iocWall = { store, ui, conn }; // for tests and debugging
  document.body.classList.remove("booting");
  loop();
  setInterval(() => { dirty = true; }, 1000); // ages and clock
}

async function showDemoSpeed() {
  let speed = null;
  try { speed = Number((await (await fetch("/healthz", { cache: "no-store" })).json())?.demo?.speed) || null; } catch { /* no badge */ }
  if (!(speed > 1)) return;
  const badge = el("span", { class: "chip demo-speed", "data-testid": "demo-badge", "data-speed": String(speed) });
  const label = () => {
    const n = fmtNumber(speed, Number.isInteger(speed) ? 0 : 1);
    badge.textContent = t("demo.badge", { n });
    badge.title = t("demo.badge_help", { n });
  };
  label();
  document.getElementById("lang-toggle").addEventListener("click", label); // after wireChrome's: the new language
  document.getElementById("province-name").after(" ", badge);
}

async function fetchCatalog() {
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await fetch("/api/catalog", { cache: "no-cache" });
      if (res.ok) { ui.denied = null; renderAuthBanner(null); return indexCatalog(await res.json()); }
      if (res.status === 401 || res.status === 403) { // signed out meanwhile: say so, retry rarely
        ui.denied = { code: res.status === 401 ? 4401 : 4403, reason: "" };
        renderAuthBanner(ui.denied);
        await new Promise((r) => setTimeout(r, DENIED_RETRY_MS));
        continue;
      }
    } catch { /* server not up yet */ }
    renderConnBanner(t("conn.catalog_wait"));
    await new Promise((r) => setTimeout(r, Math.min(10000, 500 * 2 ** attempt)));
  }
}

function loop() {
  if (dirty) {
    dirty = false;
    try { renderAll(); } catch (e) { console.error(e); }
  }
  requestAnimationFrame(loop);
}

function wireChrome() {
  document.getElementById("lang-toggle").addEventListener("click", () => {
    setLang(getLang() === "vi" ? "en" : "vi");
    applyI18n();
    renderChrome();
    renderMapLegend();
    dirty = true;
  });
  document.getElementById("sound-toggle").addEventListener("click", () => {
    sound.setMuted(!sound.isMuted());
    sound.unlock();
    renderChrome();
  });
  document.addEventListener("click", () => sound.unlock(), { capture: true });
  document.getElementById("toast").addEventListener("click", () => { ui.toast = null; ui.focusUntil = 0; dirty = true; });
  const seg = document.getElementById("period-switch");
  for (const p of ["day", "month", "year"]) {
    seg.append(el("button", {
      type: "button", "data-period": p, "data-i18n": `period.${p}`,
      onclick: () => { ui.period = p; dirty = true; renderPeriod(); },
    }));
  }
  const rotate = Number(params.get("rotate"));
  if (!singlePanel && rotate > 0) {
    document.body.classList.add("single", "rotating");
    document.body.dataset.panel = PANELS[0];
    setInterval(() => {
      if (Date.now() < ui.holdRotationUntil) return;
      ui.rotateIdx = (ui.rotateIdx + 1) % PANELS.length;
      document.body.dataset.panel = PANELS[ui.rotateIdx];
      dirty = true;
    }, rotate * 1000);
  }
}

function renderChrome() {
  document.getElementById("lang-toggle").textContent = getLang() === "vi" ? "EN" : "VI";
  document.getElementById("lang-toggle").title = t("lang.switch");
  const muted = sound.isMuted();
  const btn = document.getElementById("sound-toggle");
  btn.setAttribute("aria-pressed", muted ? "false" : "true");
  btn.classList.toggle("muted", muted);
  document.getElementById("sound-label").textContent = muted ? t("sound.off") : t("sound.on");
  btn.title = muted ? t("sound.unmute") : t("sound.mute");
  renderPeriod();
  renderConn();
}

function renderPeriod() {
  for (const b of document.querySelectorAll("#period-switch button")) {
    b.classList.toggle("on", b.dataset.period === ui.period);
    b.textContent = t(`period.${b.dataset.period}`);
  }
}

// ------------------------------------------------------------ connection
function renderConn() {
  const node = document.getElementById("conn");
  node.dataset.state = ui.connState;
  document.getElementById("conn-label").textContent = t(`conn.${ui.connState}`);
  let detail = "";
  if (ui.connState === "reconnecting" && conn?.nextRetryAt && conn.attempt > 0) {
    detail = t("conn.retry_in", { s: Math.max(0, Math.ceil((conn.nextRetryAt - Date.now()) / 1000)), n: conn.attempt });
  } else if (ui.connState === "stale") {
    detail = ui.connInfo.reason === "watermark" ? t("conn.stale_watermark", { age: fmtAge(ui.connInfo.ms) }) : t("conn.stale_silent", { age: fmtAge(ui.connInfo.ms) });
  } else if (ui.connState === "live" && conn?.lastMsgAt) {
    detail = t("conn.last_msg", { age: fmtAge(Date.now() - conn.lastMsgAt) });
  }
  document.getElementById("conn-detail").textContent = detail;
  document.body.dataset.conn = ui.connState;
  renderAuthBanner(ui.denied);
  if (ui.connState === "live" || ui.denied) renderConnBanner(null);
  else {
    const wm = store.watermark();
    renderConnBanner(t(ui.connState === "stale" ? "conn.banner_stale" : "conn.banner_reconnecting", { time: wm ? fmtTime(wm, true) : "—" }));
  }
}

/** Signed out or refused (close 4401/4403, or the API's 401/403): a message that stays, and a way to sign in. */
function renderAuthBanner(denied) {
  const b = document.getElementById("auth-banner");
  b.hidden = !denied;
  document.body.dataset.auth = denied ? "denied" : "ok";
  if (!denied) return;
  const key = denied.code === 4403 ? (denied.reason === "origin not allowed" ? "auth.origin" : "auth.role") : "auth.revoked";
  b.dataset.code = String(denied.code);
  document.getElementById("auth-text").textContent = t(key);
  const link = document.getElementById("auth-signin");
  link.href = `/signin?next=${encodeURIComponent(location.pathname + location.search)}`;
  link.textContent = t("auth.signin_again");
}

function renderConnBanner(text) {
  const b = document.getElementById("conn-banner");
  b.hidden = !text;
  if (text) b.textContent = text;
}

// ---------------------------------------------------------------- alerts cue
function cueNewAlerts(alerts, prevMap) {
  let newest = null;
  for (const a of alerts) {
    const tag = `${a.id}@${a.started ?? ""}`;
    // an unacknowledged critical already firing when the page loads (a kiosk reboot) is cued like a new one
    const isCrit = a.state === "firing" && a.severity === "critical" && !a.acknowledged;
    if (!isCrit || ui.seenAlerts.has(tag)) continue;
    const prev = prevMap?.get(a.id);
    if (prev && prev.state === "firing" && prev.severity === "critical" && (prev.started ?? "") === (a.started ?? "")) {
      ui.seenAlerts.add(tag);
      continue;
    }
    ui.seenAlerts.add(tag);
    ui.flashUntil.set(a.id, Date.now() + 15000);
    newest = a;
  }
  if (!newest) return;
  ui.cues += 1;
  const played = sound.playCritical();
  const btn = document.getElementById("sound-toggle");
  btn.dataset.cues = String(ui.cues);
  btn.dataset.lastPlayed = played ? "true" : "false";
  document.body.dataset.criticalCues = String(ui.cues);
  ui.toast = { alert: newest, until: Date.now() + FOCUS_MS };
  ui.focusUntil = Date.now() + FOCUS_MS;
  ui.holdRotationUntil = Date.now() + FOCUS_MS * 2;
  if (document.body.classList.contains("rotating")) {
    ui.rotateIdx = PANELS.indexOf("alerts");
    document.body.dataset.panel = "alerts";
  }
  document.body.classList.remove("flash-critical");
  void document.body.offsetWidth; // restart the CSS animation
  document.body.classList.add("flash-critical");
  setTimeout(() => document.body.classList.remove("flash-critical"), 6000);
}

// ---------------------------------------------------------------- render
function renderAll() {
  if (!ui.catalog) return;
  const now = Date.now();
  document.getElementById("clock").textContent = fmtTime(now, true);
  renderConn();
  renderFeedStrip();
  renderKpi();
  renderRanking();
  renderRain();
  renderQueues();
  renderAlerts();
  renderToast(now);
  document.getElementById("wall").classList.toggle("focus-alerts", now < ui.focusUntil);
  fitText(document.querySelectorAll(FIT_SELECTOR));
}

function renderFeedStrip() {
  const strip = document.getElementById("feed-strip");
  const items = [];
  for (const f of FEEDS) {
    const info = store.feeds[f];
    const silent = info.lastMsg ? Date.now() - info.lastMsg : null;
    const cls = info.wm == null ? "none" : silent > 120000 ? "old" : "ok";
    items.push(el("span", { class: `feed feed-${cls}`, "data-feed": f, title: t("feed.tooltip") },
      el("span", { class: "feed-name", text: t(`feed.${f}`) }),
      el("span", { class: "feed-wm", text: info.wm ? fmtTime(info.wm) : "—" }),
      el("span", { class: "feed-age", text: silent != null ? fmtAge(silent) : "" })));
  }
  strip.replaceChildren(...items);
}

// ------------------------------------------------------------------- KPI
function kpiStatus(def, rec, unitId) {
  if (!rec || rec.value == null || rec.unknown) return "grey";
  const v = Number(rec.value);
  if (def.kind === "rate") {
    const target = ui.catalog.targets?.[def.target];
    if (target == null) return "neutral";
    if (v >= target) return "green";
    if (v >= 0.9 * target) return "yellow";
    return "red";
  }
  if (def.kind === "overdue") {
    if (v <= 0) return "green";
    const open = store.value("dossier_open", "now", unitId);
    if (open > 0 && v / open <= OVERDUE_YELLOW_SHARE) return "yellow";
    return "red";
  }
  return "neutral";
}

const STATUS_ICON = { green: "●", yellow: "▲", red: "■", grey: "○", neutral: "◆" };

function kpiTile(def, unitId) {
  const window = def.window ?? ui.period;
  const rec = store.get(def.name, window, unitId);
  const status = kpiStatus(def, rec, unitId);
  let value = "—";
  if (rec && rec.value != null) {
    if (def.kind === "rate") value = fmtPct(Number(rec.value));
    else value = fmtNumber(Number(rec.value));
  }
  let target = "";
  let targetTitle = "";
  if (def.kind === "rate" && ui.catalog.targets?.[def.target] != null) {
    target = t("kpi.target_short", { v: fmtPct(ui.catalog.targets[def.target], 0) });
    targetTitle = t("kpi.target_ge", { v: fmtPct(ui.catalog.targets[def.target], 0) });
  }
  else if (def.kind === "overdue") target = t("kpi.target_zero");
  else if (def.kind === "count" && rec?.period) target = rec.period;
  const age = store.age(rec);
  const stale = !!rec?.stale;
  const aged = age != null && age > 30 * 60e3;
  return el("div", {
    class: `tile st-${status}${stale ? " is-stale" : ""}${aged ? " is-aged" : ""}`,
    "data-testid": "kpi-tile", "data-indicator": def.name, "data-unit": unitId, "data-window": window,
    "data-status": status, "data-stale": stale ? "true" : "false", "data-value": rec?.value ?? "",
  },
    el("div", { class: "tile-label", text: t(`kpi.${def.key}`), title: t(`kpi.${def.key}`) }),
    el("div", { class: "tile-value fit", text: value }),
    el("div", { class: "tile-foot fit" },
      el("span", { class: "tile-status" }, el("span", { class: "tile-ico", text: STATUS_ICON[status] }), t(`status.${status}`)),
      el("span", { class: "tile-target", text: target, title: targetTitle || null })),
    el("div", { class: "tile-age fit", title: rec?.ts ?? "" },
      stale ? t("kpi.stale") : rec ? t("kpi.age", { time: fmtTime(rec._ts), age: fmtAge(age) }) : t("kpi.nodata")),
  );
}

function renderKpi() {
  const cat = ui.catalog;
  const body = document.getElementById("kpi-body");
  const rootId = cat.rootId;
  const sel = ui.selected && ui.selected !== rootId ? ui.selected : null;
  const groups = [rootId];
  if (sel) groups.push(sel);
  const out = [];
  for (const unitId of groups) {
    const u = cat.unitById.get(unitId);
    const head = el("div", { class: "kpi-group-head" },
      el("span", { class: "kpi-level", "data-kind": unitKind(cat, unitId), text: t(`level.${unitKind(cat, unitId)}`) }),
      el("span", { class: "kpi-unit fit", text: entityName(cat, unitId), title: entityName(cat, unitId), "data-short": shortName(cat, unitId) }), // the detail view: the full name if it fits at all
      periodLabel(unitId),
      unitId !== rootId ? el("button", { type: "button", class: "kpi-clear", text: "×", title: t("kpi.clear"), onclick: () => selectUnit(null) }) : null);
    out.push(el("div", { class: "kpi-group", "data-unit": unitId }, head,
      el("div", { class: "kpi-grid" }, KPIS.map((d) => kpiTile(d, unitId)))));
  }
  if (!sel) out.push(el("div", { class: "kpi-hint", text: t("kpi.pick_unit") }));
  body.replaceChildren(...out);
}

function periodLabel(unitId) {
  const rec = store.get("dossier_received", ui.period, unitId);
  return el("span", { class: "kpi-period", text: rec?.period ? `${t(`period.${ui.period}`)} ${rec.period}` : t(`period.${ui.period}`) });
}

function selectUnit(unitId) {
  ui.selected = unitId;
  if (unitId) safeSet(localStorage, "ioc.unit", unitId); else localStorage.removeItem("ioc.unit");
  showTrend("unit", unitId); // 30-day dossier trend (trends.js)
  dirty = true;
}

// --------------------------------------------------------------- ranking
// Change since yesterday: the wall keeps each unit's latest rank per local
// (event-time) date in localStorage under "ioc.ranks.<YYYY-MM-DD>" and
// compares today's rank with the one stored for the previous date.
const RANK_PREFIX = "ioc.ranks.";
let rankCache = { date: null, json: null };

function rememberRanks(date, ranks) {
  const json = JSON.stringify(ranks);
  if (rankCache.date === date && rankCache.json === json) return;
  rankCache = { date, json };
  safeSet(localStorage, RANK_PREFIX + date, json);
  // keep one week
  try {
    for (let i = localStorage.length - 1; i >= 0; i--) {
      const k = localStorage.key(i);
      if (k?.startsWith(RANK_PREFIX) && k.slice(RANK_PREFIX.length) < localDate(Date.parse(date) - 7 * 86400e3)) localStorage.removeItem(k);
    }
  } catch { /* ignore */ }
}

function yesterdayRanks(date) {
  const y = localDate(Date.parse(date + "T12:00:00+07:00") - 86400e3);
  try { return JSON.parse(safeGet(localStorage, RANK_PREFIX + y) || "null"); } catch { return null; }
}

function renderRanking() {
  const cat = ui.catalog;
  // all ranks, stored by date
  let wm = null;
  for (const u of cat.units) {
    const r = store.get("unit_rank", "year", u.id);
    if (r?.value != null && r._ts != null && (wm == null || r._ts > wm)) wm = r._ts;
  }
  const { ranks, counts } = displayRanks(cat);
  const date = wm != null ? localDate(wm) : null;
  if (date && Object.keys(ranks).length) rememberRanks(date, ranks);
  const prev = date ? yesterdayRanks(date) : null;

  const crumbs = document.getElementById("crumbs");
  const chain = [];
  for (let id = ui.drill; id; id = cat.unitById.get(id)?.parent) chain.unshift(id);
  crumbs.replaceChildren(...chain.flatMap((id, i) => [
    ...(i ? [el("span", { class: "crumb-sep", text: "›" })] : []),
    el("button", { type: "button", class: `crumb${id === ui.drill ? " on" : ""}`, "data-unit": id, text: shortName(cat, id), title: entityName(cat, id),
      onclick: () => { ui.drill = id; selectUnit(id === cat.rootId ? null : id); } }),
  ]));

  const facts = (id) => ({
    id, u: cat.unitById.get(id), kind: unitKind(cat, id), levelCount: counts[unitKind(cat, id)] ?? 0,
    rank: ranks[id] ?? null,
    score: store.value("unit_score", "year", id),
    onTime: store.value("dossier_on_time_rate", ui.period, id),
    online: store.value("dossier_online_rate", ui.period, id),
    overdue: store.value("dossier_overdue_open", "now", id),
    hasKids: cat.children.has(id),
  });
  const kids = (cat.children.get(ui.drill) ?? []).map(facts);
  // units of different kinds (districts and the province's departments) are ranked apart
  const KIND_ORDER = { district: 0, commune: 1, department: 2 };
  kids.sort((a, b) => (KIND_ORDER[a.kind] ?? 3) - (KIND_ORDER[b.kind] ?? 3) || (a.rank ?? 1e9) - (b.rank ?? 1e9)
    || (b.score ?? -1) - (a.score ?? -1) || a.id.localeCompare(b.id));
  const mixed = new Set(kids.map((k) => k.kind)).size > 1;
  const body = document.getElementById("ranking-body");
  if (!kids.length) { body.replaceChildren(el("div", { class: "empty", text: t("ranking.no_children") })); return; }
  const head = el("div", { class: "rank-row rank-head" },
    el("span", { text: t("ranking.rank") }), el("span", { text: t("ranking.unit") }), el("span", { text: t("ranking.score") }),
    el("span", { text: t("ranking.change"), title: t("ranking.change_help") }), el("span", { text: t("ranking.col_on_time") }),
    el("span", { text: t("ranking.col_online") }), el("span", { text: t("ranking.col_overdue") }));
  const targets = cat.targets ?? {};
  const rows = [summaryRow(facts(ui.drill), targets)]; // the unit whose children are ranked: shown apart, not ranked
  let lastKind = null;
  for (const k of kids) {
    if (mixed && k.kind !== lastKind) {
      rows.push(el("div", { class: "rank-group", text: t(`ranking.group_${k.kind}`) }));
      lastKind = k.kind;
    }
    rows.push(rankRow(k, prev, targets));
  }
  body.replaceChildren(head, ...rows);
}

/**
 * Ranks as shown: 1…N within each kind of unit (districts, communes, departments), following the
 * server's unit_rank order.  The province is not one of its own departments, so it is never ranked.
 */
function displayRanks(cat) {
  const byKind = new Map();
  for (const u of cat.units) {
    if (u.id === cat.rootId) continue;
    const kind = unitKind(cat, u.id);
    if (!byKind.has(kind)) byKind.set(kind, []);
    byKind.get(kind).push({ id: u.id, r: store.value("unit_rank", "year", u.id) });
  }
  const ranks = {};
  const counts = {};
  for (const [kind, list] of byKind) {
    counts[kind] = list.length;
    const ranked = list.filter((x) => x.r != null).sort((a, b) => a.r - b.r || a.id.localeCompare(b.id));
    ranked.forEach((x, i) => { ranks[x.id] = i > 0 && x.r === ranked[i - 1].r ? ranks[ranked[i - 1].id] : i + 1; });
  }
  return { ranks, counts };
}

const rateCls = (v, tg) => v == null ? "grey" : tg == null ? "" : v >= tg ? "green" : v >= 0.9 * tg ? "yellow" : "red";

function rateCells(k, targets) {
  return [
    el("span", { class: `rate ${rateCls(k.onTime, targets.on_time_rate)}`, text: fmtPct(k.onTime, 0) }),
    el("span", { class: `rate ${rateCls(k.online, targets.online_rate)}`, text: fmtPct(k.online, 0) }),
    el("span", { class: `rate ${k.overdue == null ? "grey" : k.overdue > 0 ? "red" : "green"}`, text: k.overdue != null ? fmtNumber(k.overdue) : "—" }),
  ];
}

/** The drilled-into unit itself (the province at the top): its figures, labelled with its kind, no rank. */
function summaryRow(k, targets) {
  const cat = ui.catalog;
  return el("button", {
    type: "button", class: `rank-row rank-summary${ui.selected === k.id || (!ui.selected && k.id === cat.rootId) ? " selected" : ""}`,
    "data-testid": "ranking-summary", "data-unit": k.id, "data-kind": k.kind,
    onclick: () => selectUnit(k.id === cat.rootId ? null : k.id),
  },
    el("span", { class: "rank-name summary-name fit", title: entityName(cat, k.id) },
      el("small", { class: "rank-kind", text: t(`level.${k.kind}`) }), shortName(cat, k.id)),
    el("span", { class: "rank-score" }, el("b", { text: k.score != null ? fmtNumber(k.score, 1) : "—" })),
    el("span", { class: "chg chg-none", text: "" }),
    ...rateCells(k, targets));
}

function rankRow(k, prev, targets) {
  const cat = ui.catalog;
  {
    const p = prev?.[k.id];
    let change = el("span", { class: "chg chg-none", text: "–", title: t("ranking.no_yesterday") });
    if (p != null && k.rank != null) {
      const d = p - k.rank;
      change = d > 0 ? el("span", { class: "chg chg-up", text: `▲ ${d}` })
        : d < 0 ? el("span", { class: "chg chg-down", text: `▼ ${-d}` })
          : el("span", { class: "chg chg-same", text: "=" });
    }
    return el("button", {
      type: "button", class: `rank-row${ui.selected === k.id ? " selected" : ""}`, "data-testid": "ranking-row", "data-unit": k.id,
      "data-rank": k.rank ?? "", onclick: () => { selectUnit(k.id); if (k.hasKids) ui.drill = k.id; },
    },
      el("span", { class: "rank-no" }, k.rank != null ? el("b", { text: k.rank }) : "—", el("small", { text: `/${k.levelCount}` })),
      el("span", { class: "rank-name fit", title: entityName(cat, k.id) }, shortName(cat, k.id), k.hasKids ? el("span", { class: "drill", text: " ›" }) : null),
      el("span", { class: "rank-score" },
        el("span", { class: "bar" }, el("i", { style: `width:${Math.max(0, Math.min(100, k.score ?? 0))}%` })),
        el("b", { text: k.score != null ? fmtNumber(k.score, 1) : "—" })),
      change,
      ...rateCells(k, targets),
    );
  }
}

// ------------------------------------------------------------------ rain
function stationState(id) {
  const r24 = store.get("rain_mm", "24h", id);
  const cls = store.get("rain_class", "24h", id);
  const r1 = store.get("rain_mm", "1h", id);
  const r3 = store.get("rain_mm", "3h", id);
  const any = r24 || cls || r1 || r3;
  const stale = !!(r24?.stale || cls?.stale || r1?.stale || r3?.stale);
  return {
    id, has: !!any, stale,
    v1: r1?.value, v3: r3?.value, v24: r24?.value,
    cls: cls?.value ?? (r24 ? classOf24h(r24.value) : null),
    ts: Math.max(r24?._ts ?? 0, r1?._ts ?? 0) || null, rec: r24 ?? r1,
  };
}

function classOf24h(v) {
  if (v == null) return null;
  if (v < 6) return "light";
  if (v < 16) return "rain";
  if (v <= 50) return "moderate";
  if (v <= 100) return "heavy";
  return "very_heavy";
}

function activeAlertsBy(rule) {
  const m = new Map();
  for (const a of store.alerts.values()) {
    if (a.rule === rule && a.state === "firing") m.set(a.entity, a);
  }
  return m;
}

function renderMapLegend() {
  renderLegend(document.getElementById("rain-legend"));
}

function renderRain() {
  const cat = ui.catalog;
  const risk = activeAlertsBy("rain_risk_level");
  const critical = new Set([...store.alerts.values()].filter((a) => a.state === "firing" && a.severity === "critical").map((a) => a.entity));
  const states = cat.stations.map((s) => {
    const st = stationState(s.id);
    const ra = risk.get(s.commune) ?? risk.get(s.id); // Decision 18 levels are per area: a gauge shows its commune's
    st.risk = ra ? Number(ra.labels?.level ?? 1) : null;
    st.alerting = critical.has(s.id);
    return st;
  });
  const svg = document.getElementById("rain-map");
  updateMap(svg, states);
  if (!document.getElementById("rain-legend").childElementCount) renderMapLegend();
  const wm = store.feeds.rain.wm;
  svg.dataset.watermark = wm ? new Date(wm).toISOString() : "";
  document.getElementById("rain-meta").textContent = wm
    ? t("rain.meta", { time: fmtTime(wm), n: states.filter((s) => s.has && !s.stale).length, total: states.length })
    : t("rain.waiting");

  const live = states.filter((s) => s.has && !s.stale).sort((a, b) => (b.risk ?? 0) - (a.risk ?? 0) || (b.v24 ?? -1) - (a.v24 ?? -1));
  const table = document.getElementById("rain-table");
  const head = el("tr", {}, el("th", { text: t("rain.station") }), el("th", { text: "1 h" }), el("th", { text: "3 h" }), el("th", { text: "24 h" }), el("th", { text: "" }));
  const rows = live.map((s) => el("tr", { class: `rc-${s.cls ?? "none"}${s.risk ? ` risk-${s.risk}` : ""}${s.alerting ? " alerting" : ""}`, "data-station": s.id },
    el("td", { class: "st-name" }, el("div", { class: "st-wrap" }, el("span", { class: "dot" }),
      el("span", { class: "st-label fit", text: cat.stationById.get(s.id)?.name ?? s.id, title: cat.stationById.get(s.id)?.name ?? s.id }))),
    el("td", { class: "num", text: fmtMm(s.v1) }),
    el("td", { class: `num${s.v3 >= 70 ? " hot" : ""}`, text: fmtMm(s.v3) }),
    el("td", { class: "num strong", text: fmtMm(s.v24) }),
    el("td", { class: "cls" }, s.risk ? el("span", { class: `chip risk-chip risk-${s.risk}`, text: t("risk.short", { n: s.risk }) })
      : el("span", { class: `chip cls-chip rc-${s.cls ?? "none"}`, text: s.cls ? t(`rainclass.${s.cls}`) : "—" }))));
  table.replaceChildren(el("thead", {}, head), el("tbody", {}, rows));
  const lost = states.filter((s) => s.stale);
  const none = states.filter((s) => !s.has);
  const staleBox = document.getElementById("rain-stale");
  staleBox.replaceChildren(
    lost.length ? el("div", { class: "lost" }, el("b", { text: t("rain.no_signal") + ": " }), lost.map((s) => cat.stationById.get(s.id)?.name ?? s.id).join(", ")) : "",
    none.length ? el("div", { class: "none" }, el("b", { text: t("rain.no_data") + ": " }), none.map((s) => cat.stationById.get(s.id)?.name ?? s.id).join(", ")) : "",
  );
}

// ---------------------------------------------------------------- queues
function renderQueues() {
  const cat = ui.catalog;
  const long = activeAlertsBy("queue_long");
  const rows = cat.sites.map((s) => {
    const w = store.get("queue_waiting", "now", s.id);
    const c = store.value("queue_counters_open", "now", s.id);
    const est = store.value("queue_wait_est_s", "now", s.id);
    const avg = store.value("queue_waiting_avg", "15m", s.id);
    const max = store.value("queue_waiting_max", "15m", s.id);
    const perCounter = w?.value != null && c > 0 ? w.value / c : null;
    const limit = s.waiting_per_counter_max ?? 8;
    const load = perCounter == null ? null : perCounter / limit;
    return { s, w, c, est, avg, max, perCounter, load, limit, alert: long.get(s.id) };
  }).sort((a, b) => (b.alert ? 1 : 0) - (a.alert ? 1 : 0) || (b.load ?? -1) - (a.load ?? -1));
  const body = document.getElementById("queues-body");
  const wm = store.feeds.cameras.wm;
  document.getElementById("queues-meta").textContent = wm ? t("queues.meta", { time: fmtTime(wm) }) : "";
  if (!rows.length) { body.replaceChildren(el("div", { class: "empty", text: t("queues.none") })); return; }
  body.replaceChildren(...rows.map((r) => {
    const closed = r.w?.value != null && r.c === 0;
    const lvl = r.alert ? "red" : closed ? "closed" : r.load == null ? "grey" : r.load >= 1 ? "red" : r.load >= 0.75 ? "yellow" : "green";
    const age = store.age(r.w);
    return el("div", { class: `queue q-${lvl}${r.w?.stale ? " is-stale" : ""}`, "data-testid": "queue-site", "data-site": r.s.id, "data-level": lvl, "data-has-data": r.w ? "true" : "false" },
      el("div", { class: "q-name" }, el("span", { class: "q-title fit", text: abbreviate(r.s.name), title: r.s.name }),
        el("small", { class: "fit", text: r.w?.stale ? t("kpi.stale") : r.w ? t("kpi.age", { time: fmtTime(r.w._ts), age: fmtAge(age) }) : t("kpi.nodata") })),
      el("div", { class: "q-now" }, el("b", { text: r.w?.value != null ? fmtNumber(r.w.value) : "—" }), el("small", { text: t("queues.waiting") })),
      el("div", { class: "q-est" }, el("b", { text: r.est != null ? fmtDuration(r.est) : "—" }), el("small", { text: t("queues.est_wait") })),
      el("div", { class: "q-counters" }, el("b", { text: r.c != null ? `${fmtNumber(r.c)}/${r.s.counters ?? "?"}` : "—" }), el("small", { text: t("queues.counters") })),
      el("div", { class: "q-load" },
        el("span", { class: "bar" }, el("i", { style: `width:${Math.min(100, (r.load ?? 0) * 100)}%` })),
        el("small", { text: closed ? t("queues.closed") : r.perCounter != null ? t("queues.per_counter", { v: fmtNumber(r.perCounter, 1), max: fmtNumber(r.limit) }) : "" }),
        el("small", { class: "q-15m", text: r.avg != null ? t("queues.avg_max", { avg: fmtNumber(r.avg, 1), max: fmtNumber(r.max ?? 0) }) : "" })),
    );
  }));
}

// ---------------------------------------------------------------- alerts
const rowCache = new Map();

function alertTime(a) { return parseTs(a.started) ?? a._ts ?? 0; }

const RISK_RULES = new Set(["rain_risk_level", "flash_flood_landslide_risk"]);

/** Severity rank: critical > warning > info; a Decision 18 level adds its level (level 4 above level 2). */
function severityScore(a) {
  const level = RISK_RULES.has(a.rule) ? Number(a.labels?.level) || 0 : 0;
  return (SEVERITY_ORDER[a.severity] ?? 0) * 10 + level;
}

/** 0 firing unacknowledged, 1 firing acknowledged, 2 resolved. */
function urgency(a) { return a.state !== "firing" ? 2 : a.acknowledged ? 1 : 0; }

/**
 * Wall order: what is still firing above the resolved section; inside each, by severity, then
 * unacknowledged before acknowledged, then newest first (alert id breaks ties, so the order is stable).
 */
function compareAlerts(x, y) {
  return ((x.state === "firing" ? 0 : 1) - (y.state === "firing" ? 0 : 1))
    || (severityScore(y) - severityScore(x)) || (urgency(x) - urgency(y))
    || (alertTime(y) - alertTime(x)) || String(x.id).localeCompare(String(y.id));
}

function renderAlerts() {
  const cat = ui.catalog;
  const all = [...store.alerts.values()];
  const counts = { critical: 0, warning: 0, info: 0, unack: 0 };
  for (const a of all) if (a.state === "firing" && a.labels?.test !== "true") { counts[a.severity] = (counts[a.severity] ?? 0) + 1; if (!a.acknowledged) counts.unack++; }
  document.getElementById("alert-counts").replaceChildren(
    ...["critical", "warning", "info"].map((s) => el("span", { class: `cnt sev-${s}${counts[s] ? "" : " zero"}`, title: t(`severity.${s}`), "data-count": counts[s] },
      el("b", { text: counts[s] }), el("span", { class: "lbl", text: " " + t(`severity.${s}`) }))),
    el("span", { class: `cnt unack${counts.unack ? "" : " zero"}`, "data-count": counts.unack }, el("b", { text: counts.unack }), " ", t("alerts.unacked")));

  const groups = new Map();
  for (const a of all) {
    const g = a.incident || `id:${a.id}`;
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g).push(a);
  }
  const list = [...groups.entries()].map(([key, items]) => {
    items.sort(compareAlerts);
    const firing = items[0].state === "firing";
    const sev = Math.max(...items.filter((a) => !firing || a.state === "firing").map((a) => SEVERITY_ORDER[a.severity] ?? 0));
    return { key, items, firing, sev };
  });
  // an incident sorts by its most severe / most urgent member (its first after the sort above)
  list.sort((a, b) => compareAlerts(a.items[0], b.items[0]) || a.key.localeCompare(b.key));
  const now = Date.now();
  const nodes = [];
  let resolvedHeader = false;
  let resolvedShown = 0;
  for (const g of list) {
    if (!g.firing) {
      if (resolvedShown >= 20) continue;
      if (!resolvedHeader) { nodes.push(el("div", { class: "alerts-sep", text: t("alerts.resolved_section") })); resolvedHeader = true; }
      resolvedShown++;
    }
    const rows = g.items.map((a) => alertRow(a, cat, now));
    if (g.items.length > 1 || !g.key.startsWith("id:")) {
      const sevName = Object.keys(SEVERITY_ORDER).find((k) => SEVERITY_ORDER[k] === g.sev) ?? "info";
      nodes.push(el("div", { class: `incident sev-${sevName}${g.firing ? "" : " resolved"}`, "data-testid": "alert-incident", "data-incident": g.key },
        el("div", { class: "incident-head" }, el("span", { text: t("alerts.incident") }), el("b", { text: g.key.replace(/^id:/, "") }),
          el("small", { text: t("alerts.n_alerts", { n: g.items.length }) })),
        rows));
    } else nodes.push(...rows);
  }
  const body = document.getElementById("alerts-body");
  if (!nodes.length) nodes.push(el("div", { class: "empty ok", text: ui.connState === "reconnecting" && !store.alerts.size ? t("alerts.waiting") : t("alerts.none") }));
  body.replaceChildren(...nodes);
}

function alertRow(a, cat, now) {
  let row = rowCache.get(a.id);
  if (!row) { row = el("div", { "data-testid": "alert-row" }); rowCache.set(a.id, row); }
  const acked = !!a.acknowledged;
  const flashing = (ui.flashUntil.get(a.id) ?? 0) > now;
  row.className = `alert sev-${a.severity} state-${a.state}${acked ? " acked" : ""}${flashing ? " flash" : ""}${a.state === "firing" && a.severity === "critical" && !acked ? " urgent" : ""}`;
  Object.assign(row.dataset, {
    alertId: a.id, severity: a.severity, state: a.state, acknowledged: acked ? "true" : "false", rule: a.rule, entity: a.entity,
  });
  const msg = a.message?.[getLang()] || a.message?.vi || `${ruleName(a.rule)} — ${entityName(cat, a.entity)}`;
  // Decision 18 levels: indicative when computed from gauges, or an operator's (who set it)
  const basis = a.labels?.basis === "manual" ? ` · ${t("risk.manual", { name: a.labels.set_by ?? "?" })}`
    : a.labels?.basis === "observed" ? ` · ${t("risk.observed")}` : "";
  const level = (a.rule === "rain_risk_level" || a.rule === "flash_flood_landslide_risk") && a.labels?.level
    ? el("span", { class: `chip risk-chip risk-${a.labels.level}`, "data-testid": "alert-risk-level", "data-basis": a.labels.basis ?? "",
      text: t("risk.short", { n: a.labels.level }) + basis, title: a.labels.reason ?? a.labels.clause ?? "" }) : null;
  // who acknowledged, who is assigned, and the latest word of the discussion (the console has the thread)
  const thread = Array.isArray(a.comments) ? a.comments : [];
  const last = thread.length ? thread[thread.length - 1] : null;
  const note = last ? el("q", { "data-testid": "alert-last-comment", text: `${last.by ?? ""}: ${last.text ?? ""}` })
    : acked && a.acknowledged.comment ? el("q", { text: a.acknowledged.comment }) : null;
  const ack = acked
    ? el("div", { class: "ack yes" }, el("b", { text: "✓ " + t("alerts.acked") }),
      el("span", { "data-testid": "alert-acked-by", text: ` ${a.acknowledged.by ?? ""}` }), ` · ${fmtTime(parseTs(a.acknowledged.at))}`,
      thread.length > 1 ? el("span", { class: "count", text: ` · ${t("alerts.comment_count", { n: thread.length })}` }) : null, note)
    : a.state === "firing" ? el("div", { class: "ack no", text: t("alerts.not_acked") }, note) : null;
  const assignee = a.assignee?.name ? el("div", { class: "assignee", "data-testid": "alert-assignee", "data-name": a.assignee.name, text: t("alerts.assigned_to", { name: a.assignee.name }) }) : null;
  row.replaceChildren(
    el("div", { class: "sev-bar" }),
    el("div", { class: "alert-main" },
      el("div", { class: "alert-top" },
        el("span", { class: `sev-badge sev-${a.severity}`, text: t(`severity.${a.severity}`) }),
        el("span", { class: "rule", text: ruleName(a.rule) }),
        level,
        el("span", { class: "entity", text: shortName(cat, a.entity), title: entityName(cat, a.entity) }),
        a.late ? el("span", { class: "chip late", text: t("alerts.late"), title: t("alerts.late_help") }) : null,
        a.labels?.test === "true" ? el("span", { class: "chip test", "data-testid": "alert-test-mark", text: t("alerts.test_mark"), title: t("alerts.test_help") }) : null,
        a.state === "resolved" ? el("span", { class: "chip resolved", text: t("alerts.resolved") }) : null),
      el("div", { class: "alert-msg", text: msg }),
      el("div", { class: "alert-meta" },
        el("span", { text: t("alerts.started", { time: fmtTime(alertTime(a)) }) }),
        a._ts ? el("span", { text: t("alerts.updated", { time: fmtTime(a._ts) }) }) : null,
        a.value != null ? el("span", { text: t("alerts.value", { v: fmtNumber(Number(a.value), Number.isInteger(a.value) ? 0 : 1) }) }) : null),
      ack, assignee),
  );
  return row;
}

function renderToast(now) {
  const box = document.getElementById("toast");
  if (!ui.toast || ui.toast.until < now) { box.hidden = true; return; }
  const a = store.alerts.get(ui.toast.alert.id) ?? ui.toast.alert;
  if (a.acknowledged || a.state !== "firing") { ui.toast = null; box.hidden = true; return; }
  box.hidden = false;
  box.replaceChildren(
    el("span", { class: "toast-tag", text: t("toast.critical") }),
    el("span", { class: "toast-msg", text: a.message?.[getLang()] || `${ruleName(a.rule)} — ${entityName(ui.catalog, a.entity)}` }),
    el("span", { class: "toast-time", text: fmtTime(alertTime(a)) }),
    el("span", { class: "toast-close", text: "×" }));
}

boot();
