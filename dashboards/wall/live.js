// The /ws protocol client (docs/architecture.md §6) and the latest-value record store.
//
// Protocol: the server sends a snapshot first, then deltas with a strictly
// increasing seq, and heartbeats when idle.  On a dropped connection we
// reconnect with exponential backoff (0.5 s doubling to 15 s, ±20 % jitter)
// and ask for ?resume=<last seq>; the server answers with the missed deltas
// or a fresh snapshot.  Deltas whose seq is not above the last applied seq are
// duplicates and are ignored.
//
// Connection state (data-state of the connection-status element):
//   reconnecting  no open socket, or open but nothing received yet
//   live          messages flowing and the data watermark advancing
//   stale         open, but no message (incl. heartbeat) for > 15 s, or the
//                 largest event time seen has not advanced for > stallS seconds
//   denied        the server closed the socket with 4401 (not signed in, token
//                 revoked) or 4403 (origin or role refused): opts.onDenied gets
//                 {code, reason}; it retries only every DENIED_RETRY_MS, never in
//                 a tight loop (a revoked session does not come back by itself)

import { parseTs } from "./common.js";

export const FEEDS = ["rain", "dossiers", "cameras", "alerts"];
export const DENIED_CODES = [4401, 4403];
const DENIED_RETRY_MS = 60000;

export function feedOf(rec) {
  if (rec.type === "alert") return "alerts";
  const n = rec.name || "";
  if (n.startsWith("rain_")) return "rain";
  if (n.startsWith("queue_")) return "cameras";
  if (n.startsWith("dossier_") || n.startsWith("unit_")) return "dossiers";
  return "other";
}

const indKey = (name, window, entity) => `${name}|${window}|${entity}`;

/** Latest value per key: indicators by (name, window, entity), alerts by id. */
export class Store {
  constructor() {
    this.ind = new Map();
    this.alerts = new Map();
    this.feeds = {};
    for (const f of [...FEEDS, "other"]) this.feeds[f] = { wm: null, lastMsg: null };
    this.serverTime = null; // last heartbeat server_time (ms)
    this.serverTimeAt = null; // performance.now() when it arrived
  }

  get(name, window, entity) { return this.ind.get(indKey(name, window, entity)); }

  value(name, window, entity) {
    const r = this.get(name, window, entity);
    return r ? r.value : undefined;
  }

  /** Replace everything (snapshot). Returns the previous alerts map. */
  replace(records) {
    const prevAlerts = this.alerts;
    this.ind = new Map();
    this.alerts = new Map();
    this.upsert(records);
    return prevAlerts;
  }

  upsert(records) {
    const now = Date.now();
    for (const r of records) {
      if (!r || typeof r !== "object") continue;
      const feed = feedOf(r);
      const f = this.feeds[feed];
      f.lastMsg = now;
      const ts = parseTs(r.ts);
      if (ts != null && (f.wm == null || ts > f.wm)) f.wm = ts;
      r._ts = ts;
      if (r.type === "alert") this.alerts.set(r.id || `${r.rule}:${r.entity}`, r);
      else if (r.type === "indicator") this.ind.set(indKey(r.name, r.window, r.entity), r);
    }
  }

  /** Largest event time over all feeds (ms) or null. */
  watermark() {
    let wm = null;
    for (const f of Object.values(this.feeds)) if (f.wm != null && (wm == null || f.wm > wm)) wm = f.wm;
    return wm;
  }

  /**
   * Data age of a record (ms): how far its event time is behind its feed's
   * watermark (or server time), plus the wall time since that feed last sent
   * anything.
   */
  age(rec) {
    if (!rec || rec._ts == null) return null;
    const f = this.feeds[feedOf(rec)];
    const ref = f.wm ?? this.serverTime ?? rec._ts;
    const behind = Math.max(0, ref - rec._ts);
    const silent = f.lastMsg == null ? 0 : Math.max(0, Date.now() - f.lastMsg);
    return behind + silent;
  }
}

export class LiveConnection {
  /**
   * @param {object} opts  onSnapshot(records, isFirst), onDelta(records), onState(state, info)
   */
  constructor(opts) {
    this.opts = opts;
    this.seq = null;
    this.ws = null;
    this.attempt = 0;
    this.state = "reconnecting";
    this.lastMsgAt = null;
    this.lastWmAdvanceAt = null;
    this.maxWm = null;
    this.gotSnapshot = false;
    this.staleAfterMs = opts.staleAfterMs ?? 15000;
    this.stallMs = opts.stallMs ?? 300000;
    this.timer = setInterval(() => this.evaluate(), 1000);
    this.connect();
  }

  url() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const q = new URLSearchParams();
    if (this.opts.topics) q.set("topics", this.opts.topics.join(","));
    if (this.opts.units) q.set("units", this.opts.units.join(","));
    if (this.seq != null) q.set("resume", String(this.seq));
    const qs = q.toString();
    return `${proto}//${location.host}/ws${qs ? "?" + qs : ""}`;
  }

  connect() {
    clearTimeout(this.retryTimer);
    let ws;
    try {
      ws = new WebSocket(this.url());
    } catch (e) {
      this.scheduleRetry();
      return;
    }
    this.ws = ws;
    this.openedAt = null;
    ws.onopen = () => { this.openedAt = Date.now(); this.evaluate(); };
    ws.onmessage = (ev) => this.onMessage(ev.data);
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (DENIED_CODES.includes(ev.code)) {
        this.denied = { code: ev.code, reason: ev.reason || "" };
        this.opts.onDenied?.(this.denied);
        this.scheduleRetry(DENIED_RETRY_MS);
      } else this.scheduleRetry();
    };
    ws.onerror = () => { /* onclose follows */ };
  }

  scheduleRetry(fixedMs) {
    this.setState(this.denied ? "denied" : "reconnecting");
    const base = fixedMs ?? Math.min(15000, 500 * 2 ** Math.min(this.attempt, 5));
    const delay = base * (0.8 + Math.random() * 0.4);
    this.attempt += 1;
    this.nextRetryAt = Date.now() + delay;
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  onMessage(data) {
    let msg;
    try { msg = JSON.parse(data); } catch { return; }
    this.lastMsgAt = Date.now();
    this.attempt = 0;
    if (this.denied) { this.denied = null; this.opts.onDenied?.(null); }
    if (msg.type === "snapshot") {
      this.seq = msg.seq ?? this.seq;
      const first = !this.gotSnapshot;
      this.gotSnapshot = true;
      this.opts.onSnapshot(msg.records || [], first);
    } else if (msg.type === "delta") {
      if (this.seq != null && msg.seq != null && msg.seq <= this.seq) return; // duplicate
      if (msg.seq != null) this.seq = msg.seq;
      this.opts.onDelta(msg.records || []);
    } else if (msg.type === "heartbeat") {
      this.opts.onHeartbeat?.(msg);
    }
    this.noteWatermark();
    this.evaluate();
  }

  noteWatermark() {
    const wm = this.opts.watermark();
    if (wm != null && (this.maxWm == null || wm > this.maxWm)) {
      this.maxWm = wm;
      this.lastWmAdvanceAt = Date.now();
    } else if (this.lastWmAdvanceAt == null) {
      this.lastWmAdvanceAt = Date.now();
    }
  }

  evaluate() {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || this.lastMsgAt == null || (this.openedAt && this.lastMsgAt < this.openedAt)) {
      this.setState(this.denied ? "denied" : "reconnecting");
      return;
    }
    const now = Date.now();
    const silentMs = now - this.lastMsgAt;
    const stalledMs = this.lastWmAdvanceAt == null ? 0 : now - this.lastWmAdvanceAt;
    if (silentMs > this.staleAfterMs) this.setState("stale", { reason: "silent", ms: silentMs });
    else if (stalledMs > this.stallMs) this.setState("stale", { reason: "watermark", ms: stalledMs });
    else this.setState("live");
  }

  setState(state, info = {}) {
    const changed = state !== this.state || info.reason !== this.stateInfo?.reason;
    this.state = state;
    this.stateInfo = info;
    if (changed) this.opts.onState(state, info);
  }

  send(obj) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(obj));
  }
}
