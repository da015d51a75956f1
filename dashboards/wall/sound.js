// Sound cue for new critical alerts, synthesised with WebAudio (no audio file).
// Browsers only start audio after a user gesture; a wall kiosk can be started
// with --autoplay-policy=no-user-gesture-required.  Muting is remembered.

import { safeGet, safeSet } from "./common.js";

const KEY = "ioc.muted";
let ctx = null;

export function isMuted() { return safeGet(localStorage, KEY) === "1"; }
export function setMuted(m) { safeSet(localStorage, KEY, m ? "1" : "0"); }

function audio() {
  if (!ctx) {
    const AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) return null;
    ctx = new AC();
  }
  return ctx;
}

/** Resume the audio context (call from a click). */
export function unlock() {
  const a = audio();
  if (a && a.state === "suspended") a.resume().catch(() => {});
}

export function audioBlocked() { return !!ctx && ctx.state !== "running"; }

/** Three descending two-tone beeps, ~1.2 s. Returns true when played. */
export function playCritical() {
  if (isMuted()) return false;
  const a = audio();
  if (!a) return false;
  if (a.state === "suspended") a.resume().catch(() => {});
  const t0 = a.currentTime + 0.02;
  const gain = a.createGain();
  gain.connect(a.destination);
  gain.gain.setValueAtTime(0.0001, t0);
  for (let i = 0; i < 3; i++) {
    const start = t0 + i * 0.4;
    for (const [f, off] of [[988, 0], [740, 0.16]]) {
      const o = a.createOscillator();
      o.type = "triangle";
      o.frequency.setValueAtTime(f, start + off);
      o.connect(gain);
      o.start(start + off);
      o.stop(start + off + 0.15);
    }
    gain.gain.exponentialRampToValueAtTime(0.35, start + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.33);
  }
  return true;
}
