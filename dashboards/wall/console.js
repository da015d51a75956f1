// Operator console: the page is served only to a signed-in operator (the HttpOnly
// session cookie, see ioc/pages.py); every call goes with that cookie and an
// X-Requested-With header (the server's CSRF guard, ioc/csrf.py).  A 401 means the
// session ended (signed out or revoked): the sign-in form trades a token for a new cookie.
// It lists and acknowledges alerts, comments on them, assigns them to a colleague,
// lists / creates / deletes silences.  Every action is the signed-in person's.
// Talks only to this origin: /api/catalog, /api/me, /api/people, /api/alerts, /api/silences.

import { loadI18n, t, ruleName, getLang, setLang, applyI18n, el, fmtDateTime, fmtNumber, parseTs, entityName, indexCatalog } from "./common.js";

const RULES = ["rain_24h_very_heavy", "rain_3h_intense", "rain_risk_level", "sensor_stale", "dossier_overdue", "queue_long", "anomaly"];
const REFRESH_MS = 5000;
const $ = (id) => document.getElementById(id);

let catalog = null;
let tab = "alerts";
let alerts = [];
let silences = [];
let ackTarget = null;
let commentTarget = null;
let assignTarget = null;
let me = null; // {name, role} of the signed-in principal (GET /api/me)
let timer = null;

class ApiError extends Error {
  constructor(status, detail) { super(detail); this.status = status; }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json", "X-Requested-With": "ioc-console" };
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
  if (e.status === 401) { signOut(t("console.revoked")); return; }
  if (e.status === 403) { showMsg(t("console.forbidden") + (e.message ? ` (${e.message})` : ""), "err"); return; }
  showMsg(t("console.error", { msg: e.message }), "err");
}

// -------------------------------------------------------------- sign in
async function signIn(token) {
  try {
    const who = await api("POST", "/signin", { token }); // sets the session cookie
    if (who?.role !== "operator" && who?.role !== "admin") throw new ApiError(403, t("console.needs_operator"));
  } catch (e) {
    const err = $("signin-error");
    err.hidden = false;
    err.textContent = e.status === 401 || e.status === 403 ? `${t("console.bad_token")} (${e.message})` : t("console.error", { msg: e.message });
    return false;
  }
  showSignedIn();
  return true;
}

async function endSession() {
  try { await api("POST", "/signout"); } catch { /* signed out anyway: the cookie is gone or dead */ }
  signOut("");
}

function signOut(reason) {
  document.body.dataset.signedIn = "false";
  me = null;
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
  $("who").textContent = whoText();
  loadMe();
  document.body.dataset.signedIn = "true";
  setTab(tab);
  clearInterval(timer);
  timer = setInterval(refresh, REFRESH_MS);
}

function whoText() {
  return me ? t("console.signed_in_as", { name: me.name, role: t(`role.${me.role}`) }) : t("console.signed_in");
}

async function loadMe() {
  try {
    const data = await api("GET", "/api/me");
    me = data && data.name ? { name: data.name, role: data.role } : null;
  } catch { me = null; /* an older server: the console still works */ }
  $("who").textContent = whoText();
  $("who").dataset.name = me?.name ?? "";
}

function setTab(next) {
  tab = next;
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("on", b.dataset.tab === tab);
  $("view-alerts").hidden = tab !== "alerts";
  $("view-silences").hidden = tab !== "silences";
  refresh();
}

async function refresh() {
  if (document.body.dataset.signedIn !== "true") return;
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
  if (!rows.length) { body.replaceChildren(el("tr", {}, el("td", { colspan: 8, class: "empty", text: t("console.no_alerts") }))); return; }
  body.replaceChildren(...rows.map((a) => {
    const acked = !!a.acknowledged;
    const firing = a.state === "firing";
    const thread = Array.isArray(a.comments) ? a.comments : [];
    const mayAct = !me || me.role !== "viewer"; // the server refuses a viewer anyway (403)
    return el("tr", {
      class: `sev-${a.severity} state-${a.state}${acked ? " acked" : ""}`, "data-testid": "console-alert-row",
      "data-alert-id": a.id, "data-acknowledged": acked ? "true" : "false", "data-state": a.state, "data-severity": a.severity,
    },
      el("td", { class: "nowrap", text: fmtDateTime(alertStart(a)) }),
      el("td", {}, el("span", { class: `sev sev-${a.severity}`, text: t(`severity.${a.severity}`) })),
      el("td", {}, el("div", { class: "rule", text: ruleName(a.rule) + (a.labels?.level ? ` · ${t("risk.short", { n: a.labels.level })}` : "") },
        isTest(a) ? el("span", { class: "c-test-mark", "data-testid": "test-mark", title: t("alerts.test_help"), text: t("alerts.test_mark") }) : null),
        el("div", { class: "msg", text: a.message?.[lang] || a.message?.vi || "" }),
        a.value != null ? el("div", { class: "sub", text: t("alerts.value", { v: fmtNumber(Number(a.value), Number.isInteger(a.value) ? 0 : 1) }) }) : null),
      el("td", {}, el("div", { text: entityName(catalog, a.entity) }), el("div", { class: "sub", text: a.entity })),
      el("td", {}, t(a.state === "firing" ? "console.state_firing" : "console.state_resolved"), a.late ? el("div", { class: "sub", text: t("alerts.late") }) : null),
      el("td", {}, acked ? el("div", { class: "ok", "data-testid": "acked-by", text: "✓ " + t("console.acked_by", { by: a.acknowledged.by ?? "", at: fmtDateTime(parseTs(a.acknowledged.at)) }) })
        : el("span", { class: "warn", text: t("alerts.not_acked") }),
        // the thread holds the acknowledgement's comment too; an alert from before threads shows it alone
        thread.length ? renderThread(thread) : (a.acknowledged?.comment ? el("div", { class: "sub", text: a.acknowledged.comment }) : null)),
      el("td", { "data-testid": "assignee" }, a.assignee ? [el("div", { class: "assignee", text: a.assignee.name }),
        el("div", { class: "sub", text: t("console.assigned_by", { by: a.assignee.by ?? "", at: fmtDateTime(parseTs(a.assignee.at)) }) })]
        : el("span", { class: "sub", text: t("console.not_assigned") })),
      el("td", {}, firing ? el("div", { class: "c-row-actions" },
        !acked ? el("button", { type: "button", class: "primary", "data-testid": "ack-button", "data-alert-id": a.id, text: t("console.ack"), onclick: () => openAck(a) }) : null,
        mayAct ? el("button", { type: "button", "data-testid": "comment-button", text: t("console.comment_add"), onclick: () => openComment(a) }) : null,
        mayAct ? el("button", { type: "button", "data-testid": "assign-button", text: t("console.assign"), onclick: () => openAssign(a) }) : null,
        mayAct && a.assignee ? el("button", { type: "button", "data-testid": "unassign-button", text: t("console.unassign"), onclick: () => unassign(a) }) : null,
        mayAct && isTest(a) ? el("button", { type: "button", "data-testid": "resolve-test-button", text: t("console.test_resolve"), onclick: () => resolveTest(a) }) : null) : null),
    );
  }));
  markLinked(body);
}

// ------------------------------------------------------- test alert (POST /api/alerts/test)
function isTest(a) { return a?.labels?.test === "true"; }

async function sendTest() {
  const b = $("test-alert");
  b.disabled = true;
  try {
    const a = await api("POST", "/api/alerts/test", {});
    if (a.result === "already_active") showMsg(t("console.test_active", { by: a.labels?.requested_by ?? "" }), "err");
    else {
      const start = parseTs(a.started ?? a.ts);
      const end = start + Number(a.labels?.ttl_s ?? 120) * 1000;
      showMsg(t("console.test_sent", { time: fmtDateTime(start), end: fmtDateTime(end) }));
    }
    await refresh();
  } catch (e) { handleError(e); }
  finally { b.disabled = false; }
}

async function resolveTest(a) {
  try {
    await api("POST", `/api/alerts/${encodeURIComponent(a.id)}/resolve`);
    showMsg(t("console.test_resolved"));
    await refresh();
  } catch (e) { handleError(e); }
}

// the demo at a speed above 1 races ahead of the wall clock: say so (GET /healthz, ioc/demo.py)
let demoSpeed = null;
async function loadDemo() {
  try {
    const res = await fetch("/healthz", { cache: "no-store" });
    demoSpeed = Number((await res.json())?.demo?.speed) || null;
  } catch { demoSpeed = null; /* an older server: no badge */ }
  renderDemo();
}

function renderDemo() {
  const badge = $("demo-badge");
  badge.hidden = !(demoSpeed > 1);
  if (!(demoSpeed > 1)) return;
  const n = fmtNumber(demoSpeed, Number.isInteger(demoSpeed) ? 0 : 1);
  badge.textContent = t("demo.badge", { n });
  badge.title = t("demo.badge_help", { n });
  badge.dataset.speed = String(demoSpeed);
}

// a notification or CAP message links to /console#alert=<id>: that row is marked and scrolled to once
let linkedShown = null;
function markLinked(body) {
  const linked = new URLSearchParams(location.hash.slice(1)).get("alert");
  if (!linked) return;
  const row = [...body.querySelectorAll("tr[data-alert-id]")].find((r) => r.dataset.alertId === linked);
  if (!row) return;
  row.classList.add("linked");
  if (linkedShown !== linked) { row.scrollIntoView({ block: "center" }); linkedShown = linked; }
}

function renderThread(thread) {
  return el("ol", { class: "thread", "data-testid": "comment-thread", "aria-label": t("console.comments", { n: thread.length }) },
    thread.map((c) => el("li", { "data-testid": "comment", "data-by": c.by ?? "" },
      el("div", { class: "by", text: t("console.comment_by", { by: c.by ?? "", at: fmtDateTime(parseTs(c.at)) }) }),
      el("div", { class: "text", text: c.text ?? "" }))));
}

/** Replace one alert with the server's answer and say what the action did. */
function applyAnswer(updated, params = {}) {
  if (updated && updated.id) {
    const { result, detail, ...rec } = updated;
    alerts = alerts.map((x) => (x.id === rec.id ? rec : x));
    renderAlerts();
    showMsg(result ? t(`console.result_${result}`, { by: updated.acknowledged?.by ?? "", name: updated.assignee?.name ?? "", ...params }) : t("console.saved"));
  } else showMsg(t("console.saved"));
  refresh();
}

function alertWhat(a) { return `${ruleName(a.rule)} — ${entityName(catalog, a.entity)}: ${a.message?.[getLang()] || ""}`; }

function openComment(a) {
  commentTarget = a;
  $("comment-what").textContent = alertWhat(a);
  $("comment-text").value = "";
  $("comment-dialog").showModal();
  $("comment-text").focus();
}

async function confirmComment() {
  const a = commentTarget;
  const text = $("comment-text").value.trim();
  if (!a || !text) return;
  const btn = $("comment-confirm");
  btn.disabled = true;
  try {
    const updated = await api("POST", `/api/alerts/${encodeURIComponent(a.id)}/comments`, { text });
    $("comment-dialog").close();
    applyAnswer(updated);
  } catch (e) {
    $("comment-dialog").close();
    handleError(e);
  } finally {
    btn.disabled = false;
    commentTarget = null;
  }
}

async function openAssign(a) {
  assignTarget = a;
  $("assign-what").textContent = alertWhat(a);
  let people = [];
  try {
    const data = await api("GET", "/api/people");
    people = (data?.people ?? []).filter((p) => p.role === "operator" || p.role === "admin");
  } catch (e) { handleError(e); return; }
  const sel = $("assign-to");
  sel.replaceChildren(...people.map((p) => el("option", { value: p.name, text: `${p.name} (${t(`role.${p.role}`)})${me && p.name === me.name ? " ★" : ""}` })));
  if (a.assignee?.name && people.some((p) => p.name === a.assignee.name)) sel.value = a.assignee.name;
  $("assign-none").hidden = people.length > 0;
  $("assign-confirm").disabled = people.length === 0;
  $("assign-dialog").showModal();
  sel.focus();
}

async function confirmAssign() {
  const a = assignTarget;
  const to = $("assign-to").value;
  if (!a || !to) return;
  const btn = $("assign-confirm");
  btn.disabled = true;
  try {
    const updated = await api("POST", `/api/alerts/${encodeURIComponent(a.id)}/assign`, { to });
    $("assign-dialog").close();
    applyAnswer(updated, { name: to });
  } catch (e) {
    $("assign-dialog").close();
    handleError(e);
  } finally {
    btn.disabled = false;
    assignTarget = null;
  }
}

async function unassign(a) {
  try {
    applyAnswer(await api("POST", `/api/alerts/${encodeURIComponent(a.id)}/unassign`, {}));
  } catch (e) { handleError(e); }
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
    applyAnswer(updated);
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
    el("td", {}, s.comment || "", s.created_by ? el("div", { class: "sub", text: t("console.silence_by", { by: s.created_by }) }) : null),
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
  if (!$("who").hidden) $("who").textContent = whoText();
  renderDemo();
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
  $("signout").addEventListener("click", endSession);
  for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => setTab(b.dataset.tab));
  $("filters").addEventListener("change", refresh);
  $("refresh").addEventListener("click", refresh);
  $("test-alert").addEventListener("click", sendTest);
  $("ack-form").addEventListener("submit", (ev) => { ev.preventDefault(); confirmAck(); });
  $("ack-cancel").addEventListener("click", () => $("ack-dialog").close());
  $("comment-form").addEventListener("submit", (ev) => { ev.preventDefault(); confirmComment(); });
  $("comment-cancel").addEventListener("click", () => $("comment-dialog").close());
  $("assign-form").addEventListener("submit", (ev) => { ev.preventDefault(); confirmAssign(); });
  $("assign-cancel").addEventListener("click", () => $("assign-dialog").close());
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
  loadDemo();
  showSignedIn(); // the server answers this page to a signed-in operator only
  document.body.dataset.ready = "true";
  window.addEventListener("hashchange", () => { linkedShown = null; renderAlerts(); });
  window.iocConsole = { refresh };
}

boot();
