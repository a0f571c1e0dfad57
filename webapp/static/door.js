// The door page: read ticket QR codes from the camera and submit them as if typed.
// The browser's BarcodeDetector is used where it reads QR codes; elsewhere the
// vendored jsQR decodes frames drawn to a canvas. Typing always works.
(function () {
  "use strict";
  var SAME_CODE_QUIET_MS = 4000; // one ticket held in front of the camera is one scan
  var FRAME_EVERY_MS = 150;
  var paused = false;
  var lastCode = "";
  var lastAt = 0;
  var audio = null;

  function form() { return document.getElementById("door-form"); }
  // The page's words (door/page.html, data-words), in the language the page speaks.
  function say(key) {
    var root = document.querySelector("[data-words]");
    return JSON.parse(root ? root.getAttribute("data-words") : "{}")[key] || key;
  }
  function screen() { return document.querySelector("#door-verdict .door-screen"); }

  function beep(ok) {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      var osc = audio.createOscillator();
      var gain = audio.createGain();
      osc.frequency.value = ok ? 880 : 220;
      osc.type = ok ? "sine" : "square";
      gain.gain.value = 0.15;
      osc.connect(gain); gain.connect(audio.destination);
      osc.start();
      osc.stop(audio.currentTime + (ok ? 0.15 : 0.45));
    } catch (e) { /* no audio on this device: the screen and vibration still say it */ }
  }

  function submitCode(code) {
    var f = form();
    if (!f || paused) return;
    var now = Date.now();
    if (code === lastCode && now - lastAt < SAME_CODE_QUIET_MS) return;
    lastCode = code; lastAt = now;
    paused = true;
    f.elements.code.value = code;
    f.requestSubmit();
  }

  function dismiss() {
    var s = screen();
    if (s) s.remove();
    paused = false;
    var f = form();
    if (f) f.elements.code.focus();
  }

  document.addEventListener("htmx:afterSwap", function (e) {
    if (!e.detail.target || e.detail.target.id !== "door-verdict") return;
    var verdict = document.getElementById("door-verdict");
    var outcome = verdict ? verdict.getAttribute("data-outcome") : "";
    var ok = outcome === "valid";
    if (navigator.vibrate) navigator.vibrate(ok ? [80] : [250, 120, 250]);
    beep(ok);
    var s = screen();
    if (s) { paused = true; s.focus(); } else { paused = false; }
  });
  document.addEventListener("click", function (e) {
    if (e.target.closest && e.target.closest("[data-dismiss]")) dismiss();
  });
  document.addEventListener("keydown", function (e) {
    if (screen() && (e.key === "Enter" || e.key === " " || e.key === "Escape")) { e.preventDefault(); dismiss(); }
  });
  document.addEventListener("submit", function (e) {
    if (e.target === form()) paused = true; // a typed code: wait for its verdict too
  });

  function startCamera(button, state) {
    button.disabled = true;
    state.textContent = say("camera_starting");
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false }).then(function (stream) {
      var video = document.getElementById("door-video");
      video.srcObject = stream;
      video.play();
      button.hidden = true;
      state.textContent = say("camera_aim");
      pickReader().then(function (read) { scanLoop(video, read); });
    }).catch(function () {
      button.disabled = false;
      state.textContent = say("camera_unavailable");
    });
  }

  function pickReader() {
    if ("BarcodeDetector" in window && window.BarcodeDetector.getSupportedFormats) {
      return window.BarcodeDetector.getSupportedFormats().then(function (formats) {
        if (formats.indexOf("qr_code") === -1) return canvasReader();
        var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
        return function (video) {
          return detector.detect(video).then(function (found) { return found.length ? found[0].rawValue : null; });
        };
      }, canvasReader);
    }
    return Promise.resolve(canvasReader());
  }

  function canvasReader() {
    var canvas = document.createElement("canvas");
    var context = canvas.getContext("2d", { willReadFrequently: true });
    return function (video) {
      var w = video.videoWidth, h = video.videoHeight;
      if (!w || !h || typeof window.jsQR !== "function") return Promise.resolve(null);
      canvas.width = w; canvas.height = h;
      context.drawImage(video, 0, 0, w, h);
      var found = window.jsQR(context.getImageData(0, 0, w, h).data, w, h, { inversionAttempts: "dontInvert" });
      return Promise.resolve(found && found.data ? found.data : null);
    };
  }

  function scanLoop(video, read) {
    function next() { window.setTimeout(tick, FRAME_EVERY_MS); }
    function tick() {
      if (paused || video.readyState < 2) { next(); return; }
      read(video).then(function (code) { if (code) submitCode(code.trim()); next(); }, next);
    }
    next();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var button = document.getElementById("door-camera-start");
    var state = document.getElementById("door-camera-state");
    if (!button || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return;
    button.hidden = false;
    button.addEventListener("click", function () { beep(true); startCamera(button, state); });
  });
})();
