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
      '<span class="badge"></span><div class="task"></div><ul class="notes"></ul>' +
      '<div class="result"></div><div class="woven"></div>';
    $("jobs").prepend(el);
    job = { el, state: "", task: "" };
    jobs.set(id, job);
    return job;
  }

  function setJobState(id, jobState, task, detail) {
    const job = jobCard(id);
    job.state = jobState;
    if (task) job.task = task;
    const badge = job.el.querySelector(".badge");
    badge.textContent = jobState;
    badge.className = "badge " + jobState;
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
      case "job_state":
        setJobState(m.job_id, m.state, m.task, m.detail);
        addTimeline("job " + m.job_id + " " + m.state, m.t);
        break;
      case "progress":
        addNote(m.job_id, m.text);
        addTimeline("job " + m.job_id + " progress", m.t);
        break;
      case "result":
        jobCard(m.job_id).el.querySelector(".result").textContent =
          (m.is_final ? "" : "(partial) ") + (m.stale ? "(stale) " : "") + m.text;
        addTimeline("job " + m.job_id + " result ready", m.t);
        break;
      case "job_error":
        setJobState(m.job_id, "failed", m.task, m.error);
        break;
      case "delivery":
        for (const id of m.job_ids || []) {
          jobCard(id).el.querySelector(".woven").textContent =
            m.kind + " at " + (typeof m.t === "number" ? m.t.toFixed(2) + "s" : "now");
        }
        addLine("woven", m.text, "woven");
        addTimeline("woven in (" + m.kind + "): " + (m.job_ids || []).join(", "), m.t);
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
