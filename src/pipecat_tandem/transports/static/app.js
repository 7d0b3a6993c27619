// Copyright (c) 2026, pipecat-tandem contributors
// SPDX-License-Identifier: BSD 2-Clause License
//
// The tandem client: a dependency-free WebRTC peer for pipecat's SmallWebRTC
// offer protocol. Transceiver order matters to the server: 0 = mic, 1 = camera.
// No ICE servers: host candidates only, nothing leaves the machine.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const state = {
    connected: false,
    pcState: "new",
    pcId: null,
    messages: [],
    botAudioTracks: 0,
    errors: [],
    jobEvents: [], // tandem-job v1 events received over RTVI (docs/rtvi-jobs.md)
    replies: {}, // RTVI server-response / error-response by message id
  };
  window.tandemState = state; // read by tests and curious users

  let pc = null;
  let channel = null;
  let localStream = null;
  let pingTimer = null;
  let meterTimer = null;
  let audioCtx = null;
  const jobs = new Map();
  let botLine = null;
  let rtviIds = 0;

  function setState(text, cls) {
    state.pcState = text;
    const el = $("state");
    el.textContent = text;
    el.className = "pill " + (cls || "");
  }

  function addTimeline(text, t) {
    const li = document.createElement("li");
    li.textContent = (typeof t === "number" ? t.toFixed(2) + "s  " : "") + text;
    $("timeline").prepend(li);
    while ($("timeline").children.length > 200) $("timeline").lastChild.remove();
  }

  function addLine(role, text, extraClass) {
    const li = document.createElement("li");
    li.className = role + (extraClass ? " " + extraClass : "");
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = role === "user" ? "you" : role === "bot" ? "bot" : role;
    const body = document.createElement("span");
    body.className = "text";
    body.textContent = text;
    li.append(who, body);
    $("transcript").append(li);
    li.scrollIntoView({ block: "nearest" });
    return li;
  }

  function jobCard(id) {
    let job = jobs.get(id);
    if (job) return job;
    const el = document.createElement("li");
    el.className = "job";
    el.dataset.jobId = id;
    el.innerHTML =
      '<span class="badge"></span><button type="button" class="cancel" hidden>Cancel</button>' +
      '<div class="task"></div><ul class="notes"></ul>' +
      '<div class="result"></div><div class="woven"></div>';
    el.querySelector(".cancel").addEventListener("click", () => cancelJob(id));
    $("jobs").prepend(el);
    job = { el, state: "", task: "" };
    jobs.set(id, job);
    return job;
  }

  // RTVI client message: the server answers with a server-response or an
  // error-response carrying the same id (docs/rtvi-jobs.md).
  function sendRtvi(t, d) {
    if (!channel || channel.readyState !== "open") return null;
    rtviIds += 1;
    const id = "tandem-page-" + rtviIds;
    channel.send(JSON.stringify({ label: "rtvi-ai", type: "client-message", id, data: { t, d } }));
    return id;
  }

  function cancelJob(id) {
    const msgId = sendRtvi("tandem-cancel-job", { job_id: id, reason: "cancelled on the page" });
    if (!msgId) return;
    jobCard(id).el.querySelector(".cancel").disabled = true;
    state.replies[msgId] = { pending: true, job_id: id };
  }

  function onJobEvent(e) {
    state.jobEvents.push(e);
    if (state.jobEvents.length > 2000) state.jobEvents.shift();
    const id = e.job_id;
    const card = jobCard(id);
    switch (e.event) {
      case "delegated": setJobState(id, "queued", e.task); break;
      case "running": setJobState(id, "running", e.task); break;
      case "progress": addNote(id, e.text); break;
      case "result_ready":
        card.el.querySelector(".result").textContent =
          (e.final ? "" : "(partial) ") + (e.stale ? "(stale) " : "") + e.text;
        if (e.final && card.state !== "stale") setJobState(id, "done", e.task);
        break;
      case "delivered":
        card.el.querySelector(".woven").textContent =
          e.delivery + " at " + (typeof e.t === "number" ? e.t.toFixed(2) + "s" : "now");
        break;
      case "cancelled": setJobState(id, "cancelled", e.task, e.reason); break;
      case "stale": setJobState(id, "stale", e.task, e.reason); break;
      case "failed": setJobState(id, "failed", e.task, e.error); break;
      default: return; // an event this page does not know yet
    }
    addTimeline("job " + id + " " + e.event.replace("_", " "), e.t);
  }

  function onRtviMessage(m) {
    const data = m.data || {};
    if (m.type === "server-message" && data.type === "tandem-job" && data.version === 1) {
      onJobEvent(data);
    } else if ((m.type === "server-response" || m.type === "error-response") && state.replies[m.id]) {
      const asked = state.replies[m.id];
      state.replies[m.id] = m;
      if (m.type === "error-response") {
        addNote(asked.job_id, "cancel refused: " + data.error);
        jobCard(asked.job_id).el.querySelector(".cancel").disabled = false;
      }
    }
  }

  function setJobState(id, jobState, task, detail) {
    const job = jobCard(id);
    job.state = jobState;
    if (task) job.task = task;
    const badge = job.el.querySelector(".badge");
    badge.textContent = jobState;
    badge.className = "badge " + jobState;
    job.el.querySelector(".cancel").hidden = !(jobState === "queued" || jobState === "running");
    job.el.querySelector(".task").textContent = job.task || id;
    if (detail) addNote(id, detail);
  }

  function addNote(id, text) {
    const li = document.createElement("li");
    li.textContent = text;
    jobCard(id).el.querySelector(".notes").append(li);
  }

  function onTandemMessage(m) {
    switch (m.type) {
      case "speaking":
        $(m.who + "-speaking").classList.toggle("on", !!m.speaking);
        if (m.who === "bot" && !m.speaking) botLine = null;
        addTimeline(m.who + (m.speaking ? " started" : " stopped") + " speaking", m.t);
        break;
      case "transcript":
        addLine("user", m.text);
        botLine = null;
        break;
      case "bot_text":
        if (!botLine) botLine = addLine("bot", "");
        botLine.querySelector(".text").textContent += (botLine.querySelector(".text").textContent ? " " : "") + m.text;
        break;
      case "unspoken":
        // Its speech failed: the user never heard it, so it is not shown as said.
        addLine("bot", m.text + " (not spoken)", "unspoken");
        break;
      // The jobs panel is drawn from the RTVI tandem-job events (onJobEvent),
      // the schema every pipecat client gets; here only the woven line.
      case "delivery":
        addLine("woven", m.text, "woven");
        break;
      case "cue":
        break;
      default:
        break;
    }
  }

  function onChannelMessage(ev) {
    let m;
    try { m = JSON.parse(ev.data); } catch (e) { return; }
    if (!m || typeof m !== "object") return;
    state.messages.push(m);
    if (state.messages.length > 2000) state.messages.shift();
    if (m.type === "signalling" && m.message && m.message.type === "renegotiate") {
      negotiate(true).catch((e) => state.errors.push(String(e)));
      return;
    }
    if (m.type === "signalling" && m.message && m.message.type === "peerLeft") {
      disconnect();
      return;
    }
    if (m.label === "tandem") onTandemMessage(m);
    else if (m.label === "rtvi-ai") onRtviMessage(m);
  }

  function waitForIce(peer) {
    if (peer.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (peer.iceGatheringState === "complete") {
          peer.removeEventListener("icegatheringstatechange", check);
          resolve();
        }
      };
      peer.addEventListener("icegatheringstatechange", check);
      setTimeout(resolve, 2000); // host candidates gather in milliseconds; never hang
    });
  }

  async function negotiate(renegotiation) {
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    await waitForIce(pc);
    const body = { sdp: pc.localDescription.sdp, type: "offer" };
    if (renegotiation && state.pcId) body.pc_id = state.pcId;
    const r = await fetch("/api/offer", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const answer = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(answer.error || "offer refused (" + r.status + ")");
    state.pcId = answer.pc_id;
    await pc.setRemoteDescription({ type: answer.type, sdp: answer.sdp });
  }

  function startMeter(stream) {
    try {
      audioCtx = new AudioContext();
      const analyser = audioCtx.createAnalyser();
      analyser.fftSize = 512;
      audioCtx.createMediaStreamSource(stream).connect(analyser);
      const data = new Uint8Array(analyser.fftSize);
      meterTimer = setInterval(() => {
        analyser.getByteTimeDomainData(data);
        let sum = 0;
        for (const v of data) sum += (v - 128) * (v - 128);
        const rms = Math.sqrt(sum / data.length) / 128;
        $("level").style.width = Math.min(100, rms * 300).toFixed(0) + "%";
      }, 80);
    } catch (e) {
      state.errors.push("meter: " + e);
    }
  }

  async function connect() {
    $("connect").disabled = true;
    setState("connecting");
    try {
      localStream = await navigator.mediaDevices.getUserMedia({
        audio: true,
        video: { width: 320, height: 240, frameRate: 15 },
      }).catch(() => navigator.mediaDevices.getUserMedia({ audio: true, video: false }));
      $("preview").srcObject = localStream;
      startMeter(localStream);
      pc = new RTCPeerConnection({ iceServers: [] });
      const audio = localStream.getAudioTracks()[0];
      const video = localStream.getVideoTracks()[0];
      // Order matters: transceiver 0 = microphone, 1 = camera.
      pc.addTransceiver(audio || "audio", { direction: "sendrecv", streams: [localStream] });
      pc.addTransceiver(video || "video", { direction: "sendrecv", streams: [localStream] });
      channel = pc.createDataChannel("tandem", { ordered: true });
      channel.onmessage = onChannelMessage;
      channel.onopen = () => {
        pingTimer = setInterval(() => {
          if (channel.readyState === "open") channel.send("ping: " + Date.now());
        }, 1000);
      };
      pc.ontrack = (ev) => {
        if (ev.track.kind === "audio") {
          state.botAudioTracks += 1;
          $("bot-audio").srcObject = ev.streams[0] || new MediaStream([ev.track]);
          $("bot-audio").play().catch(() => {});
        }
      };
      pc.onconnectionstatechange = () => {
        const s = pc.connectionState;
        state.connected = s === "connected";
        setState(s, s === "connected" ? "ok" : s === "failed" ? "bad" : "");
        addTimeline("connection " + s);
        if (s === "failed" || s === "closed") disconnect();
      };
      await negotiate(false);
      $("connect").textContent = "Disconnect";
      $("connect").classList.add("connected");
    } catch (e) {
      state.errors.push(String(e));
      setState("error: " + (e.message || e), "bad");
      disconnect();
    } finally {
      $("connect").disabled = false;
    }
  }

  function disconnect() {
    clearInterval(pingTimer);
    clearInterval(meterTimer);
    if (channel) { try { channel.close(); } catch (e) { /* already closed */ } }
    if (pc) { try { pc.close(); } catch (e) { /* already closed */ } }
    if (localStream) localStream.getTracks().forEach((t) => t.stop());
    if (audioCtx) audioCtx.close().catch(() => {});
    pc = channel = localStream = audioCtx = null;
    state.connected = false;
    state.pcId = null;
    $("connect").textContent = "Connect";
    $("connect").classList.remove("connected");
    if (!state.pcState.startsWith("error")) setState("disconnected");
  }

  async function checkHealth() {
    try {
      const r = await fetch("/healthz");
      const h = await r.json();
      $("health").textContent = r.ok ? "models ready" : (h.reason || h.status);
      $("health").className = "pill " + (r.ok ? "ok" : "");
      if (!r.ok) setTimeout(checkHealth, 1000);
    } catch (e) {
      $("health").textContent = "server unreachable";
      $("health").className = "pill bad";
      setTimeout(checkHealth, 2000);
    }
  }

  $("connect").addEventListener("click", () => (pc ? disconnect() : connect()));
  window.tandemConnect = connect;
  window.tandemPeer = () => pc; // for getStats() in tests and debugging
  window.tandemDisconnect = disconnect;
  checkHealth();
})();
