// vigil's page: camera tiles (latest frame with its map, a live score chart on a log scale, state), the event list,
// a clip player with two review buttons. Live through server-sent events (/api/stream), no reload.
// Every name shown goes through textContent (never innerHTML), so nothing from the server is markup.
"use strict";

const tiles = new Map();          // camera name -> {el, img, canvas, state, figures, scores: [[t, s]], threshold}
let selected = null;              // the event shown in the player
const HISTORY_SECONDS = 60;

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function when(epoch) {
  return epoch == null ? "…" : new Date(epoch * 1000).toLocaleTimeString();
}

// --- cameras -------------------------------------------------------------------------------------
function tileFor(cam) {
  let t = tiles.get(cam.name);
  if (t) return t;
  const root = el("article", "tile");
  root.dataset.camera = cam.name;
  const head = el("div", "tile-head");
  const name = el("span", "tile-name", cam.name);
  const state = el("span", "state");
  head.append(name, state);
  const img = el("img");
  img.alt = "latest frame of " + cam.name;
  const canvas = el("canvas");
  canvas.width = 600; canvas.height = 120;
  const figures = el("div", "figures");
  root.append(head, img, canvas, figures);
  document.getElementById("cameras").append(root);
  t = {root, img, canvas, state, figures, scores: [], threshold: cam.threshold, frame: -1};
  tiles.set(cam.name, t);
  return t;
}

function updateCamera(cam) {
  const t = tileFor(cam);
  t.threshold = cam.threshold;
  t.state.textContent = cam.state;
  t.root.classList.toggle("anomaly", cam.state === "anomaly");
  t.figures.textContent = "";
  const score = cam.score == null ? "–" : cam.score.toFixed(2);
  t.figures.append(`score ${score} / threshold ${cam.threshold.toFixed(2)} · ${cam.fps.toFixed(1)} fps · `);
  const skipped = el("span", cam.frames_skipped ? "skipped" : "", `${cam.frames_skipped} frames skipped`);
  if (cam.frames_skipped) skipped.title = "scoring fell behind the camera; the oldest waiting frames were dropped";
  t.figures.append(skipped);
  for (const s of cam.scores || []) t.scores.push(s);
  const now = Date.now() / 1000;
  while (t.scores.length && t.scores[0][0] < now - HISTORY_SECONDS) t.scores.shift();
  drawChart(t, now);
  if (cam.frames_scored !== t.frame && cam.frames_scored > 0) {
    t.frame = cam.frames_scored;
    const next = new Image();
    next.onload = () => { t.img.src = next.src; };
    next.src = `/api/cameras/${encodeURIComponent(cam.name)}/latest.jpg?n=${cam.frames_scored}`;
  }
}

function drawChart(t, now) {
  const c = t.canvas, g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  // a log scale (sign kept): anomalies score hundreds of times the threshold, normal frames near it
  const f = v => Math.sign(v) * Math.log1p(Math.abs(v));
  const values = t.scores.map(s => f(s[1])).concat([f(t.threshold)]);
  const hi = Math.max(...values) * 1.1, lo = Math.min(0, ...values);
  const y = v => c.height - 4 - (f(v) - lo) / (hi - lo || 1) * (c.height - 8);
  const x = tt => (tt - (now - HISTORY_SECONDS)) / HISTORY_SECONDS * c.width;
  g.strokeStyle = "#ff5a4f"; g.setLineDash([6, 4]); g.lineWidth = 1.5;
  g.beginPath(); g.moveTo(0, y(t.threshold)); g.lineTo(c.width, y(t.threshold)); g.stroke();
  g.setLineDash([]); g.strokeStyle = "#7fb3ff"; g.lineWidth = 2;
  g.beginPath();
  t.scores.forEach(([tt, s], i) => (i ? g.lineTo(x(tt), y(s)) : g.moveTo(x(tt), y(s))));
  g.stroke();
}

// --- events --------------------------------------------------------------------------------------
function eventItem(ev) {
  const li = el("li", "event");
  li.dataset.id = ev.id;
  const img = el("img");
  img.alt = "snapshot";
  if (ev.snapshot_url) img.src = ev.snapshot_url + "?v=" + encodeURIComponent(ev.top_score);
  const text = el("div");
  const title = el("div", "", `${ev.camera} · ${ev.label}`);
  const meta = el("div", "meta", `${when(ev.start_time)} – ${when(ev.end_time)} · top ${ev.top_score.toFixed(2)}`);
  text.append(title, meta);
  if (ev.end_time == null) text.append(el("div", "open", "in progress"));
  if (ev.verdict) text.append(el("div", "verdict-" + ev.verdict, ev.verdict.replace("_", " ")));
  else if (ev.end_time != null && !ev.has_clip && ev.clip_note) text.append(el("div", "meta", "no clip"));
  li.append(img, text);
  li.addEventListener("click", () => show(ev));
  if (selected && selected.id === ev.id) li.classList.add("selected");
  return li;
}

async function loadEvents() {
  const r = await fetch("/api/events?limit=50", {credentials: "same-origin"});
  if (!r.ok) return;
  const list = document.getElementById("events");
  const items = (await r.json()).map(eventItem);
  list.replaceChildren(...items);
  if (selected) {
    const fresh = (await (await fetch(`/api/events/${encodeURIComponent(selected.id)}`)).json());
    if (fresh.has_clip && !selected.has_clip) show(fresh);
    else selected = fresh;
  }
}

function show(ev) {
  selected = ev;
  document.getElementById("player").hidden = false;
  document.getElementById("player-title").textContent = `${ev.camera} · ${when(ev.start_time)} · ${ev.id}`;
  document.getElementById("verdict").textContent = ev.verdict ? ev.verdict.replace("_", " ") : "";
  const video = document.getElementById("clip");
  const src = ev.clip_urls && (ev.clip_urls.webm || ev.clip_urls.mp4);
  if (src) { video.src = src; video.load(); } else { video.removeAttribute("src"); video.load(); }
  for (const li of document.querySelectorAll(".event")) li.classList.toggle("selected", li.dataset.id === ev.id);
}

async function review(verdict) {
  if (!selected) return;
  const r = await fetch(`/api/events/${encodeURIComponent(selected.id)}/review`, {
    method: "POST", credentials: "same-origin",
    headers: {"Content-Type": "application/json"}, body: JSON.stringify({verdict}),
  });
  const label = document.getElementById("verdict");
  if (r.ok) { selected = await r.json(); label.textContent = verdict.replace("_", " "); loadEvents(); }
  else label.textContent = "not saved (" + r.status + ")";
}

document.getElementById("confirm").addEventListener("click", () => review("confirmed"));
document.getElementById("false-alarm").addEventListener("click", () => review("false_alarm"));

// --- live ----------------------------------------------------------------------------------------
function health(h) {
  const p = document.getElementById("problem");
  p.hidden = !h.storage_problem;
  p.textContent = h.storage_problem ? "Clips are not being written: " + h.storage_problem + " (events are still recorded)" : "";
  const mqtt = h.mqtt == null ? "" : (h.mqtt ? " · MQTT connected" : " · MQTT disconnected");
  document.getElementById("status").textContent = `${h.cameras} cameras${mqtt}`;
}

async function start() {
  const r = await fetch("/api/cameras", {credentials: "same-origin"});
  if (r.ok) (await r.json()).forEach(updateCamera);
  await loadEvents();
  let pending = null;
  const source = new EventSource("/api/stream");
  source.addEventListener("cameras", e => {
    const msg = JSON.parse(e.data);
    msg.cameras.forEach(updateCamera);
    health(msg.health);
  });
  source.addEventListener("event", () => {           // new, update or end: refresh the list (at most 4/s)
    if (!pending) pending = setTimeout(() => { pending = null; loadEvents(); }, 250);
  });
  source.onerror = () => { document.getElementById("status").textContent = "reconnecting…"; };
}

start();
