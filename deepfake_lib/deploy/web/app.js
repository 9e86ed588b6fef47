// deepfake_lib web page: score a file (POST predict) or the microphone (WebSocket stream),
// draw the per-window timeline, list suspicious segments and show the model card (GET model).
// Plain browser JavaScript, no build step and nothing loaded from outside this service.
"use strict";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "deepfake-token";
const CHUNK_S = 0.1; // seconds of audio per WebSocket message
let recorder = null;

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }
function authHeaders() { return token() ? { Authorization: "Bearer " + token() } : {}; }
function setStatus(text) { $("status").textContent = text; }
function fmt(x, digits = 3) { return (typeof x === "number" && isFinite(x)) ? x.toFixed(digits) : "n/a"; }

async function api(path, options = {}) {
  const response = await fetch(new URL(path, location.href), { ...options, headers: { ...authHeaders(), ...(options.headers || {}) } });
  if (response.status === 401) { $("token-box").hidden = false; throw new Error("this service needs a token"); }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.detail || ("HTTP " + response.status));
  return body;
}

// ---------------------------------------------------------------- results
function resetResult() {
  $("timeline").replaceChildren();
  $("segments").replaceChildren();
  $("verdict").className = "verdict";
  $("verdict").removeAttribute("data-done");
  $("verdict").textContent = "scoring...";
}

function addWindow(w) {
  const bar = document.createElement("div");
  bar.className = "win " + w.label;
  bar.style.height = Math.max(2, Math.round(100 * w.prob_real)) + "%";
  bar.title = `${fmt(w.start_s, 2)}-${fmt(w.end_s, 2)} s: score ${fmt(w.score)}, P(bona fide) ${fmt(w.prob_real)}`;
  $("timeline").appendChild(bar);
}

function showVerdict(label, score, prob, nWindows, final) {
  const v = $("verdict");
  v.className = "verdict " + label;
  v.textContent = `${label} (score ${fmt(score)}, P(bona fide) ${fmt(prob)}, ${nWindows} windows${final ? "" : ", so far"})`;
  if (final) v.setAttribute("data-done", String(nWindows));
}

function showResult(result) {
  $("timeline").replaceChildren();
  result.windows.forEach((w) => addWindow({ ...w, label: w.score >= result.threshold ? "Real" : "Fake" }));
  showSegments(result.suspicious_segments);
  showVerdict(result.label, result.score, result.prob_real, result.n_windows, true);
}

function showSegments(segments) {
  const list = $("segments");
  list.replaceChildren();
  if (!segments.length) { const li = document.createElement("li"); li.className = "muted"; li.textContent = "none"; list.appendChild(li); return; }
  for (const s of segments) {
    const li = document.createElement("li");
    li.textContent = `${fmt(s.start_s, 2)}-${fmt(s.end_s, 2)} s (${s.n_windows} windows, lowest score ${fmt(s.min_score)})`;
    list.appendChild(li);
  }
}

// ---------------------------------------------------------------- model card
async function loadCard() {
  const info = await api("model");
  $("token-box").hidden = true;
  const facts = $("card-facts");
  facts.replaceChildren();
  const add = (k, v) => { const dt = document.createElement("dt"); dt.textContent = k; const dd = document.createElement("dd"); dd.textContent = v; facts.append(dt, dd); };
  const m = info.metrics;
  add("model", info.id);
  add("runtime", `${info.runtime} on ${info.device}`);
  add("window", `${info.window_s} s every ${info.hop_s} s`);
  add("threshold", `${fmt(info.threshold)} (${info.threshold_source})`);
  add("trained and tested on", m ? String(m.data_source) : "unknown (not a run folder)");
  if (m) add("test clips", String(m.n));
  const body = $("card-metrics").tBodies[0];
  body.replaceChildren();
  for (const [key, e] of Object.entries(m ? m.values : {})) {
    const tr = document.createElement("tr");
    for (const text of [key, fmt(e.value), e.ci ? `[${fmt(e.ci[0])}, ${fmt(e.ci[1])}]` : "none", e.meaning]) {
      const td = document.createElement("td"); td.textContent = text; tr.appendChild(td);
    }
    body.appendChild(tr);
  }
  const warn = $("card-warning");
  const embedded = m && String(m.data_source).toLowerCase().includes("embedded");
  warn.hidden = !(embedded || !m);
  warn.textContent = embedded
    ? "Warning: this model was trained and tested on the embedded synthetic corpus. Its EER says nothing about real speech or real deepfakes."
    : "Warning: no test metrics are known for this model; its verdicts are unmeasured.";
}

// ---------------------------------------------------------------- file
async function scoreFile(file) {
  resetResult();
  setStatus(`uploading ${file.name}...`);
  const form = new FormData();
  form.append("file", file, file.name);
  try {
    const result = await api("predict", { method: "POST", body: form });
    showResult(result);
    setStatus(`${file.name}: ${result.duration_s.toFixed(2)} s scored in ${Math.round(result.processing_ms)} ms`);
  } catch (err) { $("verdict").textContent = "error"; setStatus(String(err.message || err)); }
}

// ---------------------------------------------------------------- microphone
async function startRecording() {
  const limitS = Math.max(1, Number($("record-seconds").value) || 30);
  resetResult();
  const url = new URL("stream", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const protocols = ["deepfake-stream"].concat(token() ? ["bearer." + token()] : []);
  let media, ctx;
  try {
    media = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
    ctx = new AudioContext({ sampleRate: 16000 });
    await ctx.audioWorklet.addModule("static/capture-worklet.js");
  } catch (err) { setStatus("microphone unavailable: " + (err.message || err)); return; }
  const rate = ctx.sampleRate;
  const limit = Math.round(limitS * rate);
  const chunk = Math.round(CHUNK_S * rate);
  const ws = new WebSocket(url, protocols);
  ws.binaryType = "arraybuffer";
  const state = { sent: 0, pending: [], pendingLength: 0, ended: false };
  recorder = { ws, media, ctx, state, stop: null };

  const flush = (force) => {
    while (state.pendingLength >= chunk || (force && state.pendingLength > 0)) {
      const n = Math.min(chunk, state.pendingLength);
      const out = new Float32Array(n);
      let k = 0;
      while (k < n) {
        const head = state.pending[0];
        const take = Math.min(head.length, n - k);
        out.set(head.subarray(0, take), k);
        k += take;
        if (take === head.length) state.pending.shift(); else state.pending[0] = head.subarray(take);
      }
      state.pendingLength -= n;
      if (ws.readyState === WebSocket.OPEN) ws.send(out.buffer);
    }
  };
  const stop = () => {
    if (state.ended) return;
    state.ended = true;
    flush(true);
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "end" }));
    media.getTracks().forEach((t) => t.stop());
    ctx.close();
    $("record").disabled = false; $("stop").disabled = true;
    setStatus(`recorded ${(state.sent / rate).toFixed(2)} s; waiting for the last windows...`);
  };
  recorder.stop = stop;

  ws.onopen = async () => {
    ws.send(JSON.stringify({ sample_rate: rate, format: "float32" }));
    const node = new AudioWorkletNode(ctx, "capture");
    node.port.onmessage = (e) => {
      if (state.ended) return;
      let block = e.data;
      if (state.sent + block.length > limit) block = block.subarray(0, limit - state.sent);
      state.sent += block.length;
      state.pending.push(block);
      state.pendingLength += block.length;
      flush(false);
      if (state.sent >= limit) stop();
    };
    ctx.createMediaStreamSource(media).connect(node);
    $("record").disabled = true; $("stop").disabled = false;
    setStatus(`recording at ${rate} Hz (stops after ${limitS} s)...`);
  };
  ws.onmessage = (e) => {
    const msg = JSON.parse(e.data);
    if (msg.type === "window") { addWindow(msg); showVerdict(msg.clip_label, msg.clip_score, msg.clip_prob_real, msg.n_windows, false); }
    else if (msg.type === "result") { showSegments(msg.suspicious_segments); showVerdict(msg.label, msg.score, msg.prob_real, msg.n_windows, true); setStatus(`stream of ${msg.duration_s.toFixed(2)} s scored`); }
    else if (msg.type === "error") { setStatus("stream error: " + msg.detail); }
  };
  ws.onclose = (e) => {
    if (!state.ended) stop();
    if (e.code !== 1000) setStatus(`stream closed (${e.code}${e.reason ? ": " + e.reason : ""})`);
  };
}

// ---------------------------------------------------------------- wiring
$("file").addEventListener("change", (e) => { if (e.target.files.length) scoreFile(e.target.files[0]); });
$("record").addEventListener("click", () => startRecording());
$("stop").addEventListener("click", () => recorder && recorder.stop && recorder.stop());
$("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
  loadCard().catch((err) => setStatus(String(err.message || err)));
});
loadCard().catch((err) => setStatus(String(err.message || err)));
