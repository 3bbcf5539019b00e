// music2emotion page: uploads files to /api/predict one request per file (so each gets
// its own progress and its own error), then draws the valence-arousal plane, the
// emotion-over-time curve of the selected file and the results table. No libraries:
// the server's Content-Security-Policy allows nothing but its own files. A server started
// with a token says so in /api/health: the page asks for it once, keeps it in this
// browser (localStorage) and sends it as "Authorization: Bearer ..."; a 401 asks again.
"use strict";

(() => {
  const SVG = "http://www.w3.org/2000/svg";
  // Where each quadrant lies, in the order of the API's words (/api/health "moods", the
  // package's config.MOOD_CLASSES): Q1 valence and arousal high, Q2 valence low and arousal
  // high, Q3 both low, Q4 valence high and arousal low. The words and their colours come
  // from /api/health, so the page names and colours them as the pictures and the CLI do.
  const SIDES = [{ v: true, a: true }, { v: false, a: true }, { v: false, a: false }, { v: true, a: false }];
  let QUADRANTS = []; // {v, a, word, color}
  // the CSV's columns: those of `music2emotion predict -o file.csv`
  const csvColumns = () => ["path", "valence", "arousal", "duration", "windows", "warning", "error", "mood",
                            ...QUADRANTS.map((q) => `p_${q.word}`), "valence_low", "valence_high", "arousal_low", "arousal_high"];

  const $ = (id) => document.getElementById(id);
  const input = $("file-input"), drop = $("drop"), tbody = document.querySelector("#results tbody");
  const entries = []; // {id, file, name, size, state, progress, result, error}
  let selected = null, nextId = 0, limits = null, active = 0, maxActive = 2;
  const queue = [];
  const TOKEN_KEY = "music2emotion-token";
  const MAX_RETRIES = 5; // 503 "busy" answers retried after the server's Retry-After
  let needsToken = false, token = readToken();

  function readToken() {
    try { return localStorage.getItem(TOKEN_KEY) || ""; } catch { return ""; }
  }
  function storeToken(value) {
    token = value;
    try { value ? localStorage.setItem(TOKEN_KEY, value) : localStorage.removeItem(TOKEN_KEY); } catch { /* private mode */ }
  }

  // ---------- helpers ----------
  function el(tag, attrs = {}, parent = null, text = null) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== null) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }
  function h(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }
  const fmt = (x) => (x === null || x === undefined ? "" : Number(x).toFixed(4));
  function fmtTime(s) {
    if (s === null || s === undefined) return "";
    const m = Math.floor(s / 60), r = Math.round(s - 60 * m);
    return r === 60 ? `${m + 1}:00` : `${m}:${String(r).padStart(2, "0")}`;
  }
  function fmtBytes(n) {
    return n >= 1e6 ? `${(n / 1e6).toFixed(n >= 1e7 ? 0 : 1)} MB` : `${Math.max(1, Math.round(n / 1e3))} kB`;
  }
  // a result's quadrant: its mood word (the quadrant of its values; of a 0.3 model, its head's);
  // none for a model without one, as the CLI and the CSV show none
  function mood(r) {
    return (r && r.mood && QUADRANTS.find((q) => q.word === r.mood)) || null;
  }
  // draw a node (and what it holds) in a quadrant's colour: the stylesheet reads --q
  function paint(node, q) {
    if (!q) return node;
    node.classList.add("q");
    node.style.setProperty("--q", q.color);
    return node;
  }
  const hasInterval = (r) => r.valence_low !== null && r.valence_low !== undefined;
  const hasMoods = (r) => r.p_happy !== null && r.p_happy !== undefined;

  // ---------- server info ----------
  async function loadHealth() {
    const foot = $("model-info");
    try {
      const res = await fetch("/api/health");
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const info = await res.json();
      limits = info.limits;
      maxActive = Math.max(1, Math.min(4, limits.workers));
      needsToken = Boolean(info.auth);
      $("token-forget").hidden = !needsToken;
      if (needsToken && !token) askToken("");
      input.accept = ["audio/*", ...limits.audio_extensions].join(",");
      $("drop-hint").textContent =
        `WAV, FLAC, MP3, OGG and more · up to ${fmtBytes(limits.max_upload_bytes)} each · analysed on this server only`;
      $("drop-hint").title = limits.audio_extensions.join(" ");
      QUADRANTS = info.moods.map((word, i) => ({ ...SIDES[i], word, color: info.colors[word] }));
      for (const axis of ["valence", "arousal"]) document.documentElement.style.setProperty(`--${axis}`, info.colors[axis]);
      const s = info.model.settings;
      foot.textContent = "";
      const name = h("span", "model-name", info.model.name);
      name.title = info.model.file;
      foot.append("Model ", name, ` · ${s.window_seconds} s windows · music2emotion ${info.version} · `);
      const a = h("a", null, "API docs");
      a.href = "/docs";
      foot.append(a);
      render();
    } catch (err) {
      foot.textContent = `Cannot reach the server (${err.message}); reload the page when it is running.`;
    }
  }

  // ---------- adding and uploading ----------
  function addFiles(files) {
    for (const file of files) {
      const entry = { id: nextId++, file, name: file.name, size: file.size, state: "queued",
                      progress: 0, result: null, error: "" };
      entries.push(entry);
      if (limits && file.size > limits.max_upload_bytes) {
        entry.state = "error";
        entry.error = `larger than the ${fmtBytes(limits.max_upload_bytes)} limit`;
      } else {
        queue.push(entry);
      }
    }
    pump();
    render();
  }

  // ---------- the token ----------
  const tokenForm = $("token-form"), tokenInput = $("token-input");
  function askToken(message) {
    $("token-message").textContent = message ||
      "This server needs a token to analyse files. It is kept in this browser.";
    tokenForm.hidden = false;
    tokenInput.focus();
  }
  tokenForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const value = tokenInput.value.trim();
    if (!value) return;
    storeToken(value);
    tokenInput.value = "";
    tokenForm.hidden = true;
    pump();
    render();
  });
  $("token-forget").addEventListener("click", () => { storeToken(""); if (needsToken) askToken(""); });

  function pump() {
    if (needsToken && !token) return; // uploads wait for the token
    while (active < maxActive && queue.length) {
      const entry = queue.shift();
      active++;
      upload(entry).finally(() => { active--; pump(); render(); });
    }
  }

  function upload(entry) {
    return new Promise((resolve) => {
      const form = new FormData();
      form.append("files", entry.file, entry.name);
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/predict");
      xhr.responseType = "json";
      if (token) xhr.setRequestHeader("Authorization", `Bearer ${token}`);
      entry.state = "uploading";
      xhr.upload.onprogress = (e) => {
        if (e.lengthComputable) { entry.progress = e.loaded / e.total; renderProgress(); updateRow(entry); }
      };
      xhr.upload.onload = () => { entry.state = "analysing"; entry.progress = 1; renderProgress(); updateRow(entry); };
      xhr.onload = () => {
        const body = xhr.response || {};
        const r = (body.results || [])[0];
        if (xhr.status === 401) {
          // no token, or a wrong one: ask, and send this file again once it is given
          storeToken("");
          needsToken = true;
          entry.state = "queued";
          entry.progress = 0;
          queue.unshift(entry);
          askToken(body.error === "wrong token" ? "That token was refused; enter the right one." : "");
          resolve();
          return;
        }
        if (xhr.status === 503 && !(r && r.status === 503) && (entry.retries || 0) < MAX_RETRIES) {
          // the server is busy: wait as long as it asks, then queue the file again
          entry.retries = (entry.retries || 0) + 1;
          entry.state = "queued";
          entry.progress = 0;
          const wait = Math.min(60, Number(xhr.getResponseHeader("Retry-After")) || 5);
          setTimeout(() => { queue.push(entry); pump(); render(); }, wait * 1000);
          resolve();
          return;
        }
        if (xhr.status === 200 && r && r.status === 200) {
          entry.state = "done";
          entry.result = r;
          if (selected === null || !entryById(selected)?.result) selected = entry.id;
        } else {
          entry.state = "error";
          entry.error = (r && r.error) || body.error || `HTTP ${xhr.status}`;
        }
        resolve();
      };
      xhr.onerror = () => {
        entry.state = "error";
        entry.error = "the upload failed (server unreachable or the connection was closed)";
        resolve();
      };
      xhr.send(form);
      updateRow(entry);
    });
  }

  const entryById = (id) => entries.find((e) => e.id === id);

  // ---------- drag and drop ----------
  let depth = 0;
  drop.addEventListener("dragenter", (e) => { e.preventDefault(); depth++; drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => { if (--depth <= 0) { depth = 0; drop.classList.remove("over"); } });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); e.dataTransfer.dropEffect = "copy"; });
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    depth = 0;
    drop.classList.remove("over");
    if (e.dataTransfer.files.length) addFiles(e.dataTransfer.files);
  });
  // a file dropped beside the zone must not navigate away from the page
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());
  input.addEventListener("change", () => { addFiles(input.files); input.value = ""; });

  $("download").addEventListener("click", downloadCsv);
  $("clear").addEventListener("click", () => {
    for (let i = entries.length - 1; i >= 0; i--) {
      if (entries[i].state === "done" || entries[i].state === "error") entries.splice(i, 1);
    }
    if (!entryById(selected)) selected = null;
    render();
  });

  // ---------- CSV ----------
  function csvCell(v) {
    const s = v === null || v === undefined ? "" : String(v);
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  }
  function downloadCsv() {
    // same columns as `music2emotion predict -o file.csv`
    const columns = csvColumns();
    const lines = [columns.join(",")];
    for (const e of entries) {
      if (e.state !== "done" && e.state !== "error") continue;
      const r = e.result || {};
      const row = { ...r, path: e.name, windows: r.windows ?? 0, warning: r.warning || "", error: e.error || r.error || "" };
      lines.push(columns.map((c) => csvCell(row[c])).join(","));
    }
    const blob = new Blob([lines.join("\r\n") + "\r\n"], { type: "text/csv" });
    const a = h("a");
    a.href = URL.createObjectURL(blob);
    a.download = "music2emotion.csv";
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  }

  // ---------- rendering ----------
  function render() {
    renderTable();
    renderPlane();
    renderTimeline();
    renderProgress();
    const finished = entries.filter((e) => e.state === "done" || e.state === "error").length;
    $("download").disabled = finished === 0;
    $("clear").disabled = finished === 0;
    $("empty").hidden = entries.length > 0;
  }

  function renderProgress() {
    const box = $("progress");
    if (!entries.length) { box.hidden = true; return; }
    const total = entries.length;
    const finished = entries.filter((e) => e.state === "done" || e.state === "error").length;
    const failed = entries.filter((e) => e.state === "error").length;
    // uploading counts up to half a file, analysis the other half
    const partial = entries.reduce((acc, e) =>
      acc + (e.state === "uploading" ? e.progress * 0.5 : e.state === "analysing" ? 0.5 : 0), 0);
    const pct = Math.round(100 * (finished + partial) / total);
    box.hidden = false;
    box.classList.toggle("busy", finished < total);
    box.querySelector(".fill").style.width = `${pct}%`;
    box.querySelector(".bar").setAttribute("aria-valuenow", String(pct));
    $("progress-text").textContent = finished < total
      ? `Analysing… ${finished} of ${total} done`
      : `${total - failed} of ${total} analysed` + (failed ? ` · ${failed} failed` : "");
  }

  // what the status column says, as [text, css class, progress 0-1 or null]
  function statusOf(entry) {
    switch (entry.state) {
      case "uploading": return [`uploading ${Math.round(entry.progress * 100)}%`, "", entry.progress * 0.5];
      case "analysing": return ["analysing…", "", 0.75];
      case "error": return [entry.error, "", null];
      case "done": return entry.result.warning ? [`⚠ ${entry.result.warning}`, "", null] : ["✓", "", null];
      default: return ["waiting", "", null];
    }
  }

  function fillStatus(entry, node) {
    const [text, , progress] = statusOf(entry);
    node.textContent = "";
    node.title = entry.state === "error" || entry.state === "done" ? text : "";
    if (progress !== null) {
      const bar = h("span", "mini");
      const fill = h("span", "mini-fill");
      fill.style.width = `${Math.round(progress * 100)}%`;
      bar.appendChild(fill);
      node.append(bar, h("span", null, text));
    } else {
      node.textContent = text;
    }
  }

  // the line under the file name on phones, where the mood and status columns are hidden
  function fillSubline(entry, node) {
    const q = mood(entry.result);
    node.className = `subline s-${entry.state}`;
    node.style.removeProperty("--q");
    if (q) paint(node, q).textContent = q.word;
    else fillStatus(entry, node);
  }

  function updateRow(entry) {
    const row = tbody.querySelector(`tr[data-id="${entry.id}"]`);
    if (!row) return;
    row.dataset.state = entry.state;
    const td = row.querySelector("td.status");
    td.className = `status s-${entry.state}`;
    fillStatus(entry, td);
    fillSubline(entry, row.querySelector(".subline"));
  }

  function renderTable() {
    tbody.textContent = "";
    for (const e of entries) {
      const tr = h("tr");
      tr.dataset.id = String(e.id);
      tr.dataset.file = e.name;
      tr.dataset.state = e.state;
      if (e.id === selected) tr.classList.add("selected");
      const name = h("td", "file");
      const r = e.result;
      const q = mood(r);
      name.append(paint(h("span", "dot"), q), h("span", "fname", e.name));
      name.title = e.name;
      const sub = h("span", "subline");
      fillSubline(e, sub);
      name.appendChild(sub);
      const moodTd = paint(h("td", "mood", q ? q.word : ""), q);
      tr.append(name, h("td", "num valence", r ? fmt(r.valence) : ""), h("td", "num arousal", r ? fmt(r.arousal) : ""),
                h("td", "num col-dur", r ? fmtTime(r.duration) : ""), moodTd);
      const st = h("td", `status s-${e.state}`);
      fillStatus(e, st);
      tr.appendChild(st);
      if (r) {
        tr.tabIndex = 0;
        tr.classList.add("pickable");
        tr.addEventListener("click", () => select(e.id));
        tr.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); select(e.id); } });
      }
      tbody.appendChild(tr);
    }
  }

  function select(id) {
    selected = id;
    render();
  }

  // plot area of the plane, in viewBox units
  const P = { x: 56, y: 16, w: 368, h: 368 };

  function renderPlane() {
    const svg = $("plane");
    svg.textContent = "";
    const px = (v) => P.x + v * P.w, py = (a) => P.y + (1 - a) * P.h;
    const half = { w: P.w / 2, h: P.h / 2 };
    for (const q of QUADRANTS) {
      const x = q.v ? P.x + half.w : P.x, y = q.a ? P.y : P.y + half.h;
      paint(el("rect", { x, y, width: half.w, height: half.h, class: "quad" }, svg), q);
      const tx = q.v ? x + half.w - 10 : x + 10, ty = q.a ? y + 22 : y + half.h - 12;
      paint(el("text", { x: tx, y: ty, class: "quad-label", "text-anchor": q.v ? "end" : "start",
                         "data-mood": q.word }, svg, q.word), q);
    }
    el("rect", { x: P.x, y: P.y, width: P.w, height: P.h, class: "plot-area" }, svg);
    for (const t of [0.25, 0.5, 0.75]) {
      el("line", { x1: px(t), x2: px(t), y1: P.y, y2: P.y + P.h, class: t === 0.5 ? "axis-mid" : "grid" }, svg);
      el("line", { x1: P.x, x2: P.x + P.w, y1: py(t), y2: py(t), class: t === 0.5 ? "axis-mid" : "grid" }, svg);
    }
    for (const t of [0, 0.5, 1]) {
      el("text", { x: px(t), y: P.y + P.h + 16, class: "tick", "text-anchor": "middle" }, svg, String(t));
      el("text", { x: P.x - 8, y: py(t) + 4, class: "tick", "text-anchor": "end" }, svg, String(t));
    }
    el("text", { x: P.x + P.w / 2, y: P.y + P.h + 36, class: "axis-label", "text-anchor": "middle" }, svg,
       "valence: sad → happy");
    el("text", { x: 16, y: P.y + P.h / 2, class: "axis-label", "text-anchor": "middle",
                 transform: `rotate(-90 16 ${P.y + P.h / 2})` }, svg, "arousal: calm → energetic");
    const done = entries.filter((e) => e.result);
    // draw the selected point last so it sits on top
    done.sort((a, b) => (a.id === selected) - (b.id === selected));
    for (const e of done) {
      const r = e.result;
      const g = paint(el("g", { class: "point-group" + (e.id === selected ? " selected" : "") }, svg), mood(r));
      if (hasInterval(r)) {
        // the intervals: a cross from low to high on each axis, with end caps
        const x0 = px(r.valence_low), x1 = px(r.valence_high), y0 = py(r.arousal_low), y1 = py(r.arousal_high);
        const cx = px(r.valence), cy = py(r.arousal), cap = 4;
        const cross = el("g", { class: "interval", "data-file": e.name }, g);
        el("line", { x1: x0, x2: x1, y1: cy, y2: cy, class: "span-valence" }, cross);
        el("line", { x1: cx, x2: cx, y1: y0, y2: y1, class: "span-arousal" }, cross);
        el("path", { d: `M${x0},${cy - cap}v${2 * cap}M${x1},${cy - cap}v${2 * cap}` +
                        `M${cx - cap},${y0}h${2 * cap}M${cx - cap},${y1}h${2 * cap}` }, cross);
        el("title", {}, cross, `${e.name}\nvalence ${fmt(r.valence_low)}–${fmt(r.valence_high)} · ` +
                               `arousal ${fmt(r.arousal_low)}–${fmt(r.arousal_high)}`);
      }
      if (e.id === selected) el("circle", { cx: px(r.valence), cy: py(r.arousal), r: 13, class: "halo" }, g);
      const c = el("circle", {
        cx: px(r.valence), cy: py(r.arousal), r: e.id === selected ? 8 : 6.5, class: "point",
        "data-file": e.name, "data-valence": String(r.valence), "data-arousal": String(r.arousal), tabindex: 0,
      }, g);
      el("title", {}, c, `${e.name}\nvalence ${fmt(r.valence)} · arousal ${fmt(r.arousal)}`);
      c.addEventListener("click", () => select(e.id));
      c.addEventListener("keydown", (ev) => { if (ev.key === "Enter") select(e.id); });
      if (e.id === selected) {
        const right = r.valence < 0.6;
        el("text", { x: px(r.valence) + (right ? 16 : -16), y: py(r.arousal) + 4, class: "point-label",
                     "text-anchor": right ? "start" : "end" }, g, shorten(e.name, 28));
      }
    }
  }

  function shorten(s, n) { return s.length > n ? s.slice(0, n - 1) + "…" : s; }

  // the timeline's viewBox follows its on-screen width, so its text keeps its size on phones
  const T = { x: 44, y: 12, w: 580, h: 250, legendRows: 1 };
  let timelineWidth = 0;

  function layoutTimeline(svg) {
    const width = Math.max(300, Math.round(svg.clientWidth || 640));
    timelineWidth = width;
    T.w = width - T.x - 14;
    T.h = width < 480 ? 190 : 250;
    T.legendRows = width < 480 ? 2 : 1;
    svg.setAttribute("viewBox", `0 0 ${width} ${T.y + T.h + 34 + 20 * T.legendRows}`);
  }

  function renderSummary(e) {
    const box = $("summary");
    box.textContent = "";
    if (!e || !e.result) { box.hidden = true; renderMoods(null); return; }
    const r = e.result, q = mood(r);
    // the interval under the value, to two decimals so that it fits a phone's width
    const range = (key) => hasInterval(r) ? `${r[key + "_low"].toFixed(2)}–${r[key + "_high"].toFixed(2)}` : "";
    const items = [["Valence", fmt(r.valence), null, range("valence")], ["Arousal", fmt(r.arousal), null, range("arousal")],
                   ["Length", fmtTime(r.duration), null, ""], ["Mood", q ? q.word : "–", q, ""]];
    for (const [k, v, quadrant, sub] of items) {
      const div = h("div", "stat");
      const dd = paint(h("dd", null, v), quadrant);
      if (sub) dd.append(h("span", "range", sub));
      div.append(h("dt", null, k), dd);
      box.appendChild(div);
    }
    box.hidden = false;
    renderMoods(r);
  }

  // the mood head's four probabilities as bars (hidden for a model without one)
  function renderMoods(r) {
    const box = $("moods");
    box.textContent = "";
    box.hidden = !(r && hasMoods(r));
    if (box.hidden) return;
    for (const q of QUADRANTS) {
      const word = q.word, p = r[`p_${word}`];
      const row = paint(h("div", "mood-bar" + (r.mood === word ? " likeliest" : "")), q);
      row.dataset.mood = word;
      row.dataset.p = String(p);
      const track = h("span", "track"), fill = h("span", "fill");
      fill.style.width = `${(100 * p).toFixed(1)}%`;
      track.appendChild(fill);
      row.append(h("span", "label", word), track, h("span", "pct", `${Math.round(100 * p)} %`));
      box.appendChild(row);
    }
  }

  function renderTimeline() {
    const svg = $("timeline"), note = $("timeline-note"), label = $("timeline-file");
    svg.textContent = "";
    layoutTimeline(svg);
    const e = entryById(selected);
    const r = e && e.result;
    label.textContent = r ? `· ${e.name}` : "";
    renderSummary(e);
    if (!r) {
      note.textContent = "Pick a file in the table or on the plane to see how its mood moves.";
      svg.classList.add("empty-chart");
      drawTimelineFrame(svg, 0);
      return;
    }
    svg.classList.remove("empty-chart");
    const segs = r.timeline && r.timeline.length ? r.timeline : null;
    const duration = r.duration || (segs ? segs[segs.length - 1].end : 1);
    drawTimelineFrame(svg, duration);
    const px = (t) => T.x + (t / duration) * T.w, py = (v) => T.y + (1 - v) * T.h;
    const series = [["valence", "line-valence"], ["arousal", "line-arousal"]];
    if (!segs) {
      // one window covers the whole file: a flat line for each value
      for (const [key, cls] of series) {
        el("line", { x1: px(0), x2: px(duration), y1: py(r[key]), y2: py(r[key]), class: `series ${cls}` }, svg);
      }
      note.textContent = `Shorter than two windows: one value for the whole file (valence ${fmt(r.valence)}, arousal ${fmt(r.arousal)}).`;
      return;
    }
    const mid = (s) => (s.start + s.end) / 2;
    for (const [key, cls] of series) {
      // the song-level value, for reference
      el("line", { x1: px(0), x2: px(duration), y1: py(r[key]), y2: py(r[key]), class: `mean ${cls}` }, svg);
      const d = segs.map((s, i) => `${i ? "L" : "M"}${px(mid(s)).toFixed(1)},${py(s[key]).toFixed(1)}`).join(" ");
      el("path", { d, class: `series ${cls}` }, svg);
      for (const s of segs) {
        const c = el("circle", { cx: px(mid(s)), cy: py(s[key]), r: 3.5, class: `dotpt ${cls}` }, svg);
        el("title", {}, c, `${fmtTime(s.start)}–${fmtTime(s.end)}: ${key} ${fmt(s[key])}`);
      }
    }
    note.textContent = `${segs.length} windows · dashed lines: the whole-file values.`;
  }

  // duration 0: an empty frame, no time axis yet
  function drawTimelineFrame(svg, duration) {
    const px = (t) => T.x + (t / duration) * T.w, py = (v) => T.y + (1 - v) * T.h;
    el("rect", { x: T.x, y: T.y, width: T.w, height: T.h, class: "plot-area" }, svg);
    for (const v of [0, 0.25, 0.5, 0.75, 1]) {
      el("line", { x1: T.x, x2: T.x + T.w, y1: py(v), y2: py(v), class: v === 0.5 ? "axis-mid" : "grid" }, svg);
      el("text", { x: T.x - 8, y: py(v) + 4, class: "tick", "text-anchor": "end" }, svg, String(v));
    }
    const step = niceStep(duration, T.w < 420 ? 5 : 8);
    for (let t = 0; duration > 0 && t <= duration + 1e-9; t += step) {
      el("line", { x1: px(t), x2: px(t), y1: T.y + T.h, y2: T.y + T.h + 5, class: "grid" }, svg);
      el("text", { x: px(t), y: T.y + T.h + 20, class: "tick", "text-anchor": "middle" }, svg, fmtTime(t));
    }
    const ly = T.y + T.h + 46;
    const second = T.legendRows > 1 ? { x: T.x, y: ly + 20 } : { x: T.x + 230, y: ly };
    el("line", { x1: T.x, x2: T.x + 22, y1: ly - 4, y2: ly - 4, class: "series line-valence" }, svg);
    el("text", { x: T.x + 28, y: ly, class: "legend" }, svg, "valence (sad → happy)");
    el("line", { x1: second.x, x2: second.x + 22, y1: second.y - 4, y2: second.y - 4, class: "series line-arousal" }, svg);
    el("text", { x: second.x + 28, y: second.y, class: "legend" }, svg, "arousal (calm → energetic)");
  }

  function niceStep(duration, ticks) {
    for (const s of [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800]) if (duration / s <= ticks) return s;
    return Math.ceil(duration / ticks / 600) * 600;
  }

  new ResizeObserver(() => {
    const w = Math.round($("timeline").clientWidth);
    if (w && Math.abs(w - timelineWidth) > 2) renderTimeline();
  }).observe($("timeline"));

  loadHealth();
  render();
})();
