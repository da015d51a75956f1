// Operator console: sign in with a bearer token (kept in sessionStorage),
// list and acknowledge alerts, list / create / delete silences.
// Talks only to this origin: /api/catalog, /api/alerts, /api/silences.

import { loadI18n, t, ruleName, getLang, setLang, applyI18n, el, fmtDateTime, fmtNumber, parseTs, entityName, indexCatalog, safeGet, safeSet, safeDel } from "./common.js";

const TOKEN_KEY = "ioc.token";
const RULES = ["rain_24h_very_heavy", "rain_3h_intense", "rain_risk_level", "sensor_stale", "dossier_overdue", "queue_long", "anomaly"];
const REFRESH_MS = 5000;
const $ = (id) => document.getElementById(id);

let catalog = null;
let tab = "alerts";
let alerts = [];
let silences = [];
let ackTarget = null;
let timer = null;

class ApiError extends Error {
  constructor(status, detail) { super(detail); this.status = status; }
}

async function api(method, path, body) {
  const token = safeGet(sessionStorage, TOKEN_KEY);
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store" });
  } catch {
    throw new ApiError(0, t("console.network"));
  }
  let data = null;
  const text = await res.text();
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!res.ok) {
    const detail = (data && typeof data === "object" && data.detail) ? (typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail)) : `HTTP ${res.status}`;
    throw new ApiError(res.status, detail);
  }
  return data;
}

function showMsg(text, kind = "ok") {
  const m = $("msg");
  m.hidden = !text;
  m.className = `c-msg ${kind}`;
  m.textContent = text || "";
  clearTimeout(showMsg.timer);
  if (text && kind === "ok") showMsg.timer = setTimeout(() => { m.hidden = true; }, 4000);
}

function handleError(e) {
  if (e.status === 401) { signOut(t("console.bad_token") + (e.message ? ` (${e.message})` : "")); return; }
  if (e.status === 403) { showMsg(t("console.forbidden") + (e.message ? ` (${e.message})` : ""), "err"); return; }
  showMsg(t("console.error", { msg: e.message }), "err");
}

// -------------------------------------------------------------- sign in
async function signIn(token) {
  safeSet(sessionStorage, TOKEN_KEY, token);
  try {
    await api("GET", "/api/alerts");
  } catch (e) {
    safeDel(sessionStorage, TOKEN_KEY);
    const err = $("signin-error");
    err.hidden = false;
    err.textContent = e.status === 401 || e.status === 403 ? `${t("console.bad_token")} (${e.message})` : t("console.error", { msg: e.message });
    return false;
  }
  showSignedIn();
  return true;
}

function signOut(reason) {
  safeDel(sessionStorage, TOKEN_KEY);
  clearInterval(timer);
  $("signin").hidden = false;
  $("tabs").hidden = true;
  $("signout").hidden = true;
  $("who").hidden = true;
  $("view-alerts").hidden = true;
  $("view-silences").hidden = true;
  const err = $("signin-error");
  err.hidden = !reason;
  err.textContent = reason || "";
}

function showSignedIn() {
  $("signin").hidden = true;
  $("signin-error").hidden = true;
  $("tabs").hidden = false;
  $("signout").hidden = false;
  $("who").hidden = false;
  $("who").textContent = t("console.signed_in");
  document.body.dataset.signedIn = "true";
  setTab(tab);
  clearInterval(timer);
  timer = setInterval(refresh, REFRESH_MS);
}

function setTab(next) {
  tab = next;
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("on", b.dataset.tab === tab);
  $("view-alerts").hidden = tab !== "alerts";
  $("view-silences").hidden = tab !== "silences";
  refresh();
}

async function refresh() {
  if (!safeGet(sessionStorage, TOKEN_KEY)) return;
  try {
    if (tab === "alerts") await loadAlerts();
    else await loadSilences();
    $("updated").textContent = t("console.updated", { time: fmtDateTime(Date.now()) });
  } catch (e) { handleError(e); }
}

// --------------------------------------------------------------- alerts
async function loadAlerts() {
  const f = new FormData($("filters"));
  const q = new URLSearchParams();
  for (const k of ["state", "severity", "rule", "unit"]) if (f.get(k)) q.set(k, f.get(k));
  const data = await api("GET", `/api/alerts${q.toString() ? "?" + q : ""}`);
  alerts = Array.isArray(data) ? data : (data?.alerts ?? []);
  renderAlerts();
}

function alertStart(a) { return parseTs(a.started) ?? parseTs(a.ts) ?? 0; }

function renderAlerts() {
  const rows = [...alerts].sort((a, b) => (a.state === "firing" ? 0 : 1) - (b.state === "firing" ? 0 : 1) || alertStart(b) - alertStart(a));
  const lang = getLang();
  const body = $("alerts");
  if (!rows.length) { body.replaceChildren(el("tr", {}, el("td", { colspan: 7, class: "empty", text: t("console.no_alerts") }))); return; }
  body.replaceChildren(...rows.map((a) => {
    const acked = !!a.acknowledged;
    return el("tr", {
      class: `sev-${a.severity} state-${a.state}${acked ? " acked" : ""}`, "data-testid": "console-alert-row",
      "data-alert-id": a.id, "data-acknowledged": acked ? "true" : "false", "data-state": a.state, "data-severity": a.severity,
    },
      el("td", { class: "nowrap", text: fmtDateTime(alertStart(a)) }),
      el("td", {}, el("span", { class: `sev sev-${a.severity}`, text: t(`severity.${a.severity}`) })),
      el("td", {}, el("div", { class: "rule", text: ruleName(a.rule) + (a.labels?.level ? ` · ${t("risk.short", { n: a.labels.level })}` : "") }),
        el("div", { class: "msg", text: a.message?.[lang] || a.message?.vi || "" }),
        a.value != null ? el("div", { class: "sub", text: t("alerts.value", { v: fmtNumber(Number(a.value), Number.isInteger(a.value) ? 0 : 1) }) }) : null),
      el("td", {}, el("div", { text: entityName(catalog, a.entity) }), el("div", { class: "sub", text: a.entity })),
      el("td", {}, t(a.state === "firing" ? "console.state_firing" : "console.state_resolved"), a.late ? el("div", { class: "sub", text: t("alerts.late") }) : null),
      el("td", {}, acked ? [el("div", { class: "ok", text: "✓ " + t("console.acked_by", { by: a.acknowledged.by ?? "", at: fmtDateTime(parseTs(a.acknowledged.at)) }) }),
        a.acknowledged.comment ? el("div", { class: "sub", text: a.acknowledged.comment }) : null] : el("span", { class: "warn", text: t("alerts.not_acked") })),
      el("td", {}, !acked && a.state === "firing" ? el("button", { type: "button", class: "primary", "data-testid": "ack-button", "data-alert-id": a.id, text: t("console.ack"), onclick: () => openAck(a) }) : null),
    );
  }));
}

function openAck(a) {
  ackTarget = a;
  $("ack-what").textContent = `${ruleName(a.rule)} — ${entityName(catalog, a.entity)}: ${a.message?.[getLang()] || ""}`;
  $("ack-comment").value = "";
  $("ack-dialog").showModal();
  $("ack-comment").focus();
}

async function confirmAck() {
  const a = ackTarget;
  if (!a) return;
  const btn = $("ack-confirm");
  btn.disabled = true;
  try {
    const updated = await api("POST", `/api/alerts/${encodeURIComponent(a.id)}/ack`, { comment: $("ack-comment").value.trim() });
    $("ack-dialog").close();
    if (updated && updated.id) alerts = alerts.map((x) => (x.id === updated.id ? updated : x));
    renderAlerts();
    showMsg(t("console.saved"));
    refresh();
  } catch (e) {
    $("ack-dialog").close();
    handleError(e);
  } finally {
    btn.disabled = false;
    ackTarget = null;
  }
}

// ------------------------------------------------------------- silences
async function loadSilences() {
  const data = await api("GET", "/api/silences");
  silences = Array.isArray(data) ? data : (data?.silences ?? []);
  renderSilences();
}

function renderSilences() {
  const body = $("silences");
  if (!silences.length) { body.replaceChildren(el("tr", {}, el("td", { colspan: 4, class: "empty", text: t("console.no_silences") }))); return; }
  body.replaceChildren(...silences.map((s) => el("tr", { "data-testid": "silence-row", "data-silence-id": s.id },
    el("td", {}, Object.entries(s.matchers || {}).map(([k, v]) => el("span", { class: "matcher", "data-key": k, text: `${k === "rule" ? t("console.filter_rule") : k === "entity" ? t("console.col_entity") : k}: ${k === "entity" ? `${entityName(catalog, v)} (${v})` : k === "rule" ? ruleName(v) : v}` }))),
    el("td", { class: "nowrap", text: fmtDateTime(parseTs(s.ends_at)) }),
    el("td", { text: s.comment || "" }),
    el("td", {}, el("button", { type: "button", class: "danger", "data-testid": "silence-delete", text: t("console.silence_delete"), onclick: () => deleteSilence(s) })),
  )));
}

async function createSilence(ev) {
  ev.preventDefault();
  const rule = $("silence-rule").value;
  const entity = $("silence-entity").value.trim();
  const dur = $("silence-duration").value;
  let ends;
  if (dur === "custom") {
    const v = $("silence-until").value; // local wall time of the browser
    if (!v) return;
    ends = new Date(v);
  } else ends = new Date(Date.now() + Number(dur) * 3600e3);
  const matchers = { rule };
  if (entity) matchers.entity = entity;
  try {
    await api("POST", "/api/silences", { matchers, ends_at: ends.toISOString(), comment: $("silence-comment").value.trim() });
    $("silence-comment").value = "";
    showMsg(t("console.saved"));
    await loadSilences();
  } catch (e) { handleError(e); }
}

async function deleteSilence(s) {
  if (!confirm(t("console.silence_confirm_delete"))) return;
  try {
    await api("DELETE", `/api/silences/${encodeURIComponent(s.id)}`);
    await loadSilences();
  } catch (e) { handleError(e); }
}

// ---------------------------------------------------------------- boot
function fillSelects() {
  const ruleFilter = $("rule-filter"), silenceRule = $("silence-rule"), unitFilter = $("unit-filter");
  const keepR = ruleFilter.value, keepU = unitFilter.value, keepS = silenceRule.value;
  ruleFilter.replaceChildren(el("option", { value: "", text: t("console.any") }), ...RULES.map((r) => el("option", { value: r, text: ruleName(r) })));
  silenceRule.replaceChildren(...RULES.map((r) => el("option", { value: r, text: ruleName(r) })));
  unitFilter.replaceChildren(el("option", { value: "", text: t("console.any") }),
    ...(catalog?.units ?? []).map((u) => el("option", { value: u.id, text: `${"\u00a0\u00a0".repeat(u.level === "district" ? 1 : u.level === "commune" ? 2 : 0)}${entityName(catalog, u.id)}` })));
  ruleFilter.value = keepR; unitFilter.value = keepU; if (keepS) silenceRule.value = keepS;
  const dl = $("entities");
  dl.replaceChildren(...[...(catalog?.stations ?? []), ...(catalog?.units ?? []), ...(catalog?.sites ?? [])].map((x) => el("option", { value: x.id, text: x.name })));
}

function relabel() {
  applyI18n();
  $("lang").textContent = getLang() === "vi" ? "EN" : "VI";
  document.title = `IOC — ${t("console.title")}`;
  fillSelects();
  if (!$("who").hidden) $("who").textContent = t("console.signed_in");
  if (tab === "alerts") renderAlerts(); else renderSilences();
}

function bindHandlers() {
  // bound before any await: a sign-in submitted while i18n or the catalog load must not
  // fall through to a native form submission (a reload that would put the token in the URL)
  $("signin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const token = $("token").value.trim();
    if (token && await signIn(token)) $("token").value = "";
  });
  $("lang").addEventListener("click", () => { setLang(getLang() === "vi" ? "en" : "vi"); relabel(); });
  $("signout").addEventListener("click", () => signOut(""));
  for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => setTab(b.dataset.tab));
  $("filters").addEventListener("change", refresh);
  $("refresh").addEventListener("click", refresh);
  $("ack-form").addEventListener("submit", (ev) => { ev.preventDefault(); confirmAck(); });
  $("ack-cancel").addEventListener("click", () => $("ack-dialog").close());
  $("silence-form").addEventListener("submit", createSilence);
  $("silence-duration").addEventListener("change", () => { $("until-wrap").hidden = $("silence-duration").value !== "custom"; });
}

async function boot() {
  bindHandlers();
  await loadI18n();
  try {
    const res = await fetch("/api/catalog", { cache: "no-cache" });
    if (res.ok) catalog = indexCatalog(await res.json());
  } catch { /* the console still works without names */ }
  $("province").textContent = catalog ? (entityName(catalog, catalog.rootId) || catalog.name) : "";
  relabel();
  if (safeGet(sessionStorage, TOKEN_KEY)) showSignedIn();
  else if (document.body.dataset.signedIn !== "true") signOut("");
  document.body.dataset.ready = "true";
  window.iocConsole = { refresh };
}

boot();
