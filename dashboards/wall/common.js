// Shared helpers for the wall and the console: language, formatting, catalog.
// No outside host is ever contacted: everything is fetched from this origin.

const LANG_KEY = "ioc.lang";
let strings = { vi: {}, en: {} };
let lang = "vi";

export async function loadI18n() {
  const res = await fetch("/static/i18n.json", { cache: "no-cache" });
  strings = await res.json();
  const q = new URLSearchParams(location.search).get("lang");
  const saved = safeGet(localStorage, LANG_KEY);
  lang = (q === "en" || q === "vi") ? q : (saved === "en" ? "en" : "vi");
  document.documentElement.lang = lang;
}

export function getLang() { return lang; }

export function setLang(next) {
  lang = next === "en" ? "en" : "vi";
  safeSet(localStorage, LANG_KEY, lang);
  document.documentElement.lang = lang;
}

/** Translate `key`; `{name}` placeholders are filled from params. */
export function t(key, params) {
  let s = strings[lang]?.[key] ?? strings.vi?.[key] ?? key;
  if (params) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in params ? String(params[k]) : m));
  return s;
}

/** Display name of an alert rule; rules without a translation are humanised. */
export function ruleName(rule) {
  const key = `rule.${rule}`;
  return (strings[lang]?.[key] ?? strings.vi?.[key]) ? t(key) : String(rule ?? "").replace(/_/g, " ");
}

/** Fill every [data-i18n] (text) and [data-i18n-title] / [data-i18n-placeholder] under root. */
export function applyI18n(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll("[data-i18n-aria]")) el.setAttribute("aria-label", t(el.dataset.i18nAria));
}

export function safeGet(store, key) { try { return store.getItem(key); } catch { return null; } }
export function safeSet(store, key, value) { try { store.setItem(key, value); } catch { /* private mode */ } }
export function safeDel(store, key) { try { store.removeItem(key); } catch { /* ignore */ } }

// ---- formatting (Vietnamese: decimal comma; local time Asia/Ho_Chi_Minh) ----
const TZ = "Asia/Ho_Chi_Minh";
const locale = () => (lang === "en" ? "en-GB" : "vi-VN");

export function fmtNumber(v, digits = 0) {
  if (v == null || Number.isNaN(v)) return "—";
  return new Intl.NumberFormat(locale(), { minimumFractionDigits: digits, maximumFractionDigits: digits }).format(v);
}

export function fmtPct(ratio, digits = 1) {
  if (ratio == null || Number.isNaN(ratio)) return "—";
  return fmtNumber(ratio * 100, digits) + (lang === "en" ? "%" : " %");
}

export function fmtMm(v) {
  if (v == null || Number.isNaN(v)) return "—";
  return fmtNumber(v, v >= 100 ? 0 : 1);
}

export function fmtTime(ms, withSeconds = false) {
  if (ms == null || Number.isNaN(ms)) return "—";
  return new Intl.DateTimeFormat(locale(), {
    timeZone: TZ, hour: "2-digit", minute: "2-digit", ...(withSeconds ? { second: "2-digit" } : {}), hour12: false,
  }).format(new Date(ms));
}

export function fmtDateTime(ms) {
  if (ms == null || Number.isNaN(ms)) return "—";
  return new Intl.DateTimeFormat(locale(), {
    timeZone: TZ, day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false,
  }).format(new Date(ms));
}

export function localDate(ms) {
  // YYYY-MM-DD in Asia/Ho_Chi_Minh (fixed +07:00, no DST)
  return new Date(ms + 7 * 3600e3).toISOString().slice(0, 10);
}

/** Age in ms → "12 s", "4 ph", "3 giờ", "2 ngày" (short, for tiles). */
export function fmtAge(ms) {
  if (ms == null || Number.isNaN(ms)) return "—";
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return t("age.s", { n: s });
  const m = Math.round(s / 60);
  if (m < 60) return t("age.m", { n: m });
  const h = Math.round(m / 60);
  if (h < 48) return t("age.h", { n: h });
  return t("age.d", { n: Math.round(h / 24) });
}

export function fmtDuration(seconds) {
  if (seconds == null || Number.isNaN(seconds)) return "—";
  const m = Math.round(seconds / 60);
  if (m < 60) return t("dur.m", { n: m });
  return t("dur.hm", { h: Math.floor(m / 60), m: String(m % 60).padStart(2, "0") });
}

export function parseTs(s) {
  if (!s) return null;
  const v = Date.parse(s);
  return Number.isNaN(v) ? null : v;
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k === "style") node.style.cssText = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export const SEVERITY_ORDER = { critical: 3, warning: 2, info: 1 };

/** Name of an entity (station, unit, site) from the catalog, in the current language. */
export function entityName(catalog, id) {
  if (!catalog || !id) return id ?? "";
  const u = catalog.unitById?.get(id);
  if (u) return (lang === "en" && u.name_en) ? u.name_en : u.name;
  const s = catalog.stationById?.get(id);
  if (s) return s.name;
  const site = catalog.siteById?.get(id);
  if (site) return site.name;
  return id;
}

// Name prefixes abbreviated where space is short (tiles, tables, crumbs); the full name goes in `title`.
const SHORT_VI = [[/^Thành phố\s+/u, "TP. "], [/^Thị xã\s+/u, "TX. "], [/^Thị trấn\s+/u, "TT. "], [/^Huyện\s+/u, "H. "],
  [/^Phường\s+/u, "P. "], [/^Trung tâm Phục vụ hành chính công\s+/u, "TT PVHCC "], [/^Bộ phận một cửa\s+/u, "BPMC "]];
// the usual abbreviations of department names ("Sở Tài nguyên và Môi trường" → "Sở TN&MT")
const DEPT_VI = [["Tài nguyên và Môi trường", "TN&MT"], ["Kế hoạch và Đầu tư", "KH&ĐT"], ["Giao thông vận tải", "GTVT"],
  ["Lao động - Thương binh và Xã hội", "LĐ-TB&XH"], ["Văn hóa, Thể thao và Du lịch", "VH-TT&DL"],
  ["Thông tin và Truyền thông", "TT&TT"], ["Nông nghiệp và Phát triển nông thôn", "NN&PTNT"],
  ["Khoa học và Công nghệ", "KH&CN"], ["Giáo dục và Đào tạo", "GD&ĐT"]].map(([long, short]) => [new RegExp(`^Sở ${long}$`, "iu"), `Sở ${short}`]);
const SHORT_EN = [[/^Department of\s+/u, "Dept. of "], [/\s+and\s+/gu, " & "], [/\s+Province$/u, ""], [/\s+District$/u, " Dist."]];
// the acronyms used in English for the departments whose "Dept. of …" is still too long for a table cell
const DEPT_EN = new Map([["Natural Resources and Environment", "DONRE"], ["Planning and Investment", "DPI"],
  ["Labour, Invalids and Social Affairs", "DOLISA"], ["Agriculture and Rural Development", "DARD"],
  ["Culture, Sports and Tourism", "DCST"], ["Information and Communications", "DIC"], ["Science and Technology", "DOST"],
  ["Education and Training", "DOET"], ["Industry and Trade", "DOIT"]]);
const SHORT_MAX_CHARS = 24;

/** Short display name of a catalog entity, for cells and tiles (the full name goes in `title`). */
export function shortName(catalog, id) {
  return abbreviate(entityName(catalog, id));
}

/** "Huyện Lập Thạch" → "H. Lập Thạch", "Department of Justice" → "Dept. of Justice" ("Sở …" stays as is). */
export function abbreviate(name) {
  let out = String(name ?? "");
  for (const [re, to] of [...DEPT_VI, ...SHORT_VI]) out = out.replace(re, to);
  if (out.startsWith("Department of ") || / (Province|District)$/u.test(out)) {
    const acronym = DEPT_EN.get(out.replace(/^Department of\s+/u, ""));
    for (const [re, to] of SHORT_EN) out = out.replace(re, to);
    if (acronym && out.length > SHORT_MAX_CHARS) out = acronym;
  }
  return out;
}

/** What a unit is, for labels: the root is the province, a unit of province level under it a department. */
export function unitKind(catalog, id) {
  const u = catalog?.unitById?.get(id);
  if (!u) return "province";
  if (id === catalog.rootId) return "province";
  return u.level === "province" ? "department" : u.level;
}

/**
 * Shrink the font of each element until its text fits its box (one measure per new text and width;
 * the result is remembered).  An element with `data-short` falls back to that shorter text when even
 * the smallest size (minScale) is too wide.  Numbers and names never wrap: the CSS says `nowrap`.
 */
const fitCache = new Map(); // class|text|width → {px: font size that fits ("" = the CSS size), text: replacement or null}
export function fitText(nodes, minScale = 0.6) {
  // read every width first, then write: one layout for the known texts, a measure only for new ones
  const items = [...nodes].map((node) => ({ node, w: node.clientWidth })).filter((x) => x.w > 0);
  const misses = [];
  for (const x of items) {
    x.key = `${x.node.className}|${x.node.textContent}|${x.w}`;
    const fit = fitCache.get(x.key);
    if (!fit) misses.push(x);
    else applyFit(x.node, fit);
  }
  for (const { node, w, key } of misses) {
    let fit = measureFit(node, w, minScale);
    if (fit.tooWide && node.dataset.short && node.dataset.short !== node.textContent) {
      node.textContent = node.dataset.short;
      fit = { ...measureFit(node, w, minScale), text: node.dataset.short };
    }
    if (fitCache.size > 4000) fitCache.clear();
    fitCache.set(key, fit);
    applyFit(node, fit);
  }
}

function measureFit(node, w, minScale) {
  node.style.fontSize = "";
  const need = node.scrollWidth;
  const base = parseFloat(getComputedStyle(node).fontSize) || 16;
  const scale = (w - 1) / need;
  return { px: need > w ? `${(base * Math.max(minScale, scale)).toFixed(2)}px` : "", text: null, tooWide: scale < minScale };
}

function applyFit(node, fit) {
  if (fit.text != null && node.textContent !== fit.text) node.textContent = fit.text;
  if (node.style.fontSize !== fit.px) node.style.fontSize = fit.px;
}

export function indexCatalog(cat) {
  cat.stations ??= []; cat.units ??= []; cat.sites ??= []; cat.targets ??= {};
  cat.unitById = new Map(cat.units.map((u) => [u.id, u]));
  cat.stationById = new Map(cat.stations.map((s) => [s.id, s]));
  cat.siteById = new Map(cat.sites.map((s) => [s.id, s]));
  cat.children = new Map();
  for (const u of cat.units) {
    if (u.parent) {
      if (!cat.children.has(u.parent)) cat.children.set(u.parent, []);
      cat.children.get(u.parent).push(u.id);
    }
  }
  const root = cat.units.find((u) => !u.parent && u.level === "province") ?? cat.units.find((u) => !u.parent) ?? cat.units.find((u) => u.level === "province");
  cat.rootId = root?.id ?? cat.province;
  return cat;
}
