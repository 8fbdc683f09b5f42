"use strict";
// The bedside page: reads the bridge's event stream (server-sent events over fetch, so the access
// token travels in a header, never in the URL) and draws one tile per board.
const STRIP_S = 10;
const boards = new Map();
let controller = null;
let token = "";
let reviewing = null;

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function tile(name) {
  if (boards.has(name)) return boards.get(name);
  const root = el("article", "tile");
  root.dataset.board = name;
  const title = el("h3");
  const label = el("span", "name", name);
  const link = el("span", "link", "connecting");
  title.append(label, link);
  const facts = el("div", "facts");
  const hr = el("span", "hr", "--");
  const rhythm = el("span", "rhythm", "rhythm: unknown");
  const quality = el("span", "quality", "signal: ok");
  const mode = el("span", "mode", "waiting");
  const counts = el("span", "counts", "0 beats, 0 flagged");
  facts.append(hr, rhythm, quality, mode, counts);
  const active = el("div", "active");
  const canvas = el("canvas");
  canvas.width = 900; canvas.height = 160;
  root.append(title, facts, active, canvas);
  document.getElementById("tiles").append(root);
  const state = { root, link, hr, rhythm, quality, mode, counts, active, canvas, strip: [], end: 0, marks: [] };
  boards.set(name, state);
  return state;
}

function showBoard(b) {
  const t = tile(b.board);
  t.root.dataset.link = b.link;
  t.root.dataset.beats = b.beats;
  t.root.dataset.flagged = b.flagged;
  t.root.dataset.rhythm = b.rhythm;
  t.link.textContent = "link " + b.link;
  t.hr.textContent = b.heart_rate == null ? "--" : b.heart_rate + " bpm";
  t.rhythm.textContent = "rhythm: " + b.rhythm;
  t.quality.textContent = "signal: " + b.quality;
  t.mode.textContent = b.mode === "learning" && b.learning_left_s != null ? "learning, " + b.learning_left_s + " s left" : b.mode;
  t.counts.textContent = b.beats + " beats, " + b.flagged + " flagged";
  const names = Object.keys(b.alarms || {});
  t.root.dataset.alarms = names.join(" ");
  t.active.textContent = names.join(", ");
}

function draw(t) {
  const c = t.canvas, g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  const n = t.strip.length;
  if (!n) return;
  const start = t.end - n / 90;
  const x = (s) => ((s - (t.end - STRIP_S)) / STRIP_S) * c.width;
  const y = (v) => c.height / 2 - v * (c.height / 4);
  g.strokeStyle = "#3f3"; g.lineWidth = 1.2; g.beginPath();
  for (let i = 0; i < n; i++) {
    const px = x(start + i / 90), py = y(t.strip[i]);
    if (i) g.lineTo(px, py); else g.moveTo(px, py);
  }
  g.stroke();
  let flags = 0;
  for (const m of t.marks) {
    if (m.t == null || m.t < t.end - STRIP_S) continue;
    const px = x(m.t);
    if (m.quality === "noisy") { g.fillStyle = "rgba(160,160,160,0.25)"; g.fillRect(px - 20, 0, 40, c.height); }
    g.fillStyle = m.flag ? (m.why === "timing" ? "#fa3" : "#f33") : "#777";
    g.beginPath(); g.arc(px, 10, m.flag ? 7 : 3, 0, 2 * Math.PI); g.fill();
    if (m.flag) flags += 1;
  }
  t.root.dataset.drawnFlags = flags;
}

const clock = (t) => new Date(t * 1000).toLocaleTimeString();
let technicalHoldS = 10;

function alarmText(a) {
  // one line per alarm episode: its start, and its end once it ended; a board's technical conditions on one line
  let text = clock(a.time) + " " + a.board + " " + a.event;
  if (a.event === "technical") {
    const counts = Object.entries(a.counts || {}).map(([name, n]) => name + (n > 1 ? " x" + n : ""));
    text += " (" + counts.join(", ") + ")";
  }
  if (a.detail) text += ": " + a.detail;
  if (a.end != null) text += " -- ended " + clock(a.end);
  return text;
}

function announced(a, now) {
  // a technical condition is announced once it has lasted technicalHoldS; arrhythmia alarms at once
  if (a.event !== "technical") return a.alarm;
  return Object.values(a.active || {}).some((since) => now - since >= technicalHoldS);
}

function alarm(a, prepend) {
  const list = document.getElementById("alarms");
  let li = a.id != null ? list.querySelector('li[data-id="' + a.id + '"]') : null;
  if (!li) {
    li = el("li");
    if (a.id != null) li.dataset.id = a.id;
    if (prepend) list.prepend(li); else list.append(li);
  }
  li.className = a.alarm ? "alarm" : "info";
  li.dataset.event = a.event;
  if (a.priority) li.dataset.priority = a.priority;
  li.dataset.board = a.board;
  li.dataset.ended = a.end != null;
  li.line = a;
  if (a.strip != null && !li.dataset.strip) {
    li.dataset.strip = a.strip;
    li.classList.add("has-strip");
    li.addEventListener("click", () => showStrip(a.strip));
  }
  li.textContent = alarmText(a);
  while (list.children.length > 200) list.lastChild.remove();
}

function announce() {
  const now = Date.now() / 1000;
  for (const li of document.querySelectorAll("#alarms li[data-event=technical]")) {
    li.dataset.announced = announced(li.line, now);
  }
}
setInterval(announce, 1000);

async function showStrip(id) {
  const response = await fetch("/api/strips/" + id, { headers: { Authorization: "Bearer " + token } });
  if (!response.ok) return;
  const strip = await response.json();
  const panel = document.getElementById("strip");
  panel.hidden = false;
  panel.querySelector("h2").textContent = strip.board + " " + strip.event + ": " + strip.detail;
  const c = panel.querySelector("canvas"), g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  g.strokeStyle = "#3f3"; g.lineWidth = 1.2; g.beginPath();
  strip.values.forEach((v, i) => {
    const x = (i / Math.max(strip.values.length - 1, 1)) * c.width, y = c.height / 2 - v * (c.height / 4);
    if (i) g.lineTo(x, y); else g.moveTo(x, y);
  });
  g.stroke();
  c.dataset.drawn = strip.id;
}

function handle(frame) {
  if (frame.type === "snapshot" && frame.mode === "review" && !reviewing) {
    document.getElementById("status").dataset.state = "review";
    document.getElementById("status").textContent = "review of a recorded session";
    document.body.classList.add("review");
    reviewing = setInterval(refresh, 2000);
  }
  if (frame.type === "snapshot") {
    for (const b of frame.boards) {
      showBoard(b);
      const t = tile(b.board);
      t.strip = b.strip; t.end = b.strip_end; t.marks = b.marks;
      draw(t);
    }
    if (frame.technical_hold_s != null) technicalHoldS = frame.technical_hold_s;
    document.getElementById("alarms").replaceChildren();
    for (const a of frame.alarms) alarm(a, false);
  } else if (frame.type === "board") {
    showBoard(frame);
  } else if (frame.type === "signal") {
    const t = tile(frame.board);
    t.strip = t.strip.concat(frame.values).slice(-STRIP_S * 90);
    t.end = frame.end;
  } else if (frame.type === "beat") {
    const t = tile(frame.board);
    t.marks.push(frame);
    if (t.marks.length > 64) t.marks.shift();
  } else if (frame.type === "alarm") {
    alarm(frame, true);
  }
}

function redraw() {
  for (const t of boards.values()) draw(t);
  requestAnimationFrame(redraw);
}

async function refresh() {
  const response = await fetch("/api/state", { headers: { Authorization: "Bearer " + token } });
  if (response.ok) handle(await response.json());
}

async function connect(given) {
  token = given;
  if (controller) controller.abort();
  controller = new AbortController();
  const status = document.getElementById("status");
  let response;
  try {
    response = await fetch("/api/events", { headers: { Authorization: "Bearer " + token }, signal: controller.signal });
  } catch (err) {
    status.dataset.state = "lost"; status.textContent = "cannot reach the bridge"; return;
  }
  if (!response.ok) {
    status.dataset.state = "refused";
    status.textContent = response.status === 401 ? "access token refused" : "refused (" + response.status + ")";
    return;
  }
  status.dataset.state = "live"; status.textContent = "live";  // a review says so with its snapshot
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        if (block.startsWith("data: ")) handle(JSON.parse(block.slice(6)));
      }
    }
  } catch (err) {
    // aborted or lost: said below
  }
  if (!reviewing) { status.dataset.state = "lost"; status.textContent = "stream ended"; }
}

document.getElementById("login").addEventListener("submit", (event) => {
  event.preventDefault();
  connect(document.getElementById("token").value);
});
requestAnimationFrame(redraw);
