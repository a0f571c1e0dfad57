// The door without a network. Before doors the page downloads the event's signed list of ticket codes (hashed)
// into IndexedDB; offline it decides each scan from the list, shows the verdict at once and queues the check-in
// (code and this device's clock) in IndexedDB; online again it sends the queue to the server, which keeps the
// first entry by device time and flags a second one: this page then shows the double entries it is part of.
(function () {
  "use strict";
  var SYNC_EVERY_MS = 10000;
  var LIST_EVERY_MS = 60000; // a fresh list after a sync that sent scans, else at most once a minute
  var listAt = 0;
  var root, eventId, codesUrl, syncUrl, csrf, device, list = null, inside = {}, syncing = false, words = {};

  function idb() {
    return new Promise(function (resolve, reject) {
      var open = indexedDB.open("ticketbooth-door", 1);
      open.onupgradeneeded = function () {
        open.result.createObjectStore("lists", { keyPath: "event_id" });
        open.result.createObjectStore("queue", { keyPath: "id" });
      };
      open.onsuccess = function () { resolve(open.result); };
      open.onerror = function () { reject(open.error); };
    });
  }
  function store(name, mode, work) {
    return idb().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(name, mode);
        var result = work(tx.objectStore(name));
        tx.oncomplete = function () { resolve(result && "result" in result ? result.result : result); };
        tx.onerror = function () { reject(tx.error); };
      });
    });
  }
  function queued() {
    return store("queue", "readonly", function (s) { return s.getAll(); }).then(function (all) {
      return all.filter(function (scan) { return scan.event_id === eventId; });
    });
  }

  function sha256(text) {
    return crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)).then(function (buffer) {
      // The first 128 bits, as the server's list keeps them (services/admin/door_sync.py, code_hash).
      return Array.prototype.map.call(new Uint8Array(buffer).slice(0, 16), function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
    });
  }

  // The page's words (door/page.html, data-words); {name} in them is filled from `values`.
  function say(key, values) {
    var text = words[key] || key;
    Object.keys(values || {}).forEach(function (name) { text = text.split("{" + name + "}").join(String(values[name])); });
    return text;
  }

  function status(text) {
    var bar = document.getElementById("door-sync");
    if (!bar) return;
    var online = navigator.onLine;
    bar.className = "door-sync " + (online ? "online" : "offline");
    var last = localStorage.getItem("door-synced-" + eventId);
    queued().then(function (scans) {
      bar.textContent = say(online ? "online" : "offline") +
        " · " + say("last_synced", { time: last ? new Date(last).toLocaleTimeString(document.documentElement.lang || undefined) : say("never") }) +
        " · " + say(scans.length === 1 ? "waiting_one" : "waiting_other", { count: scans.length }) + (text ? " · " + text : "");
    });
  }

  function loadList() {
    return fetch(codesUrl, { credentials: "same-origin", cache: "no-store" }).then(function (response) {
      if (!response.ok) throw new Error("list " + response.status);
      return response.json();
    }).then(function (fresh) {
      listAt = Date.now();
      return store("lists", "readwrite", function (s) { s.put(fresh); }).then(function () { return fresh; });
    }).catch(function () {
      return store("lists", "readonly", function (s) { return s.get(eventId); });
    }).then(function (kept) {
      list = kept || null;
      inside = {};
      if (list) list["in"].forEach(function (h) { inside[h] = true; });
      return queued().then(function (scans) {
        scans.forEach(function (scan) { inside[scan.hash] = true; });
      });
    });
  }

  function verdict(outcome, words, detail) {
    var old = document.getElementById("door-verdict");
    var count = old ? old.querySelector(".door-count") : null;
    var box = document.createElement("div");
    box.id = "door-verdict";
    box.setAttribute("data-outcome", outcome);
    box.setAttribute("data-offline", "1");
    if (count) box.appendChild(count);
    var screen = document.createElement("div");
    screen.className = "door-screen " + outcome;
    screen.setAttribute("role", "alert");
    screen.setAttribute("tabindex", "-1");
    screen.setAttribute("data-dismiss", "");
    var word = document.createElement("p");
    word.className = "door-verdict-word";
    word.textContent = words;
    var more = document.createElement("p");
    more.textContent = detail;
    var tap = document.createElement("p");
    tap.className = "door-tap muted";
    tap.textContent = say("tap_next");
    screen.appendChild(word); screen.appendChild(more); screen.appendChild(tap);
    box.appendChild(screen);
    if (old) old.replaceWith(box); else root.appendChild(box);
    // door.js beeps, vibrates and waits for a tap, as after a verdict from the server.
    document.dispatchEvent(new CustomEvent("htmx:afterSwap", { detail: { target: box } }));
  }

  function decide(code) {
    code = code.replace(/\s+/g, "");
    if (!code) return;
    if (!list) { verdict("unknown", say("no_list_word"), say("no_list")); return; }
    sha256(code).then(function (hash) {
      if (inside[hash]) { verdict("already_checked_in", say("already_word"), say("already")); return; }
      if (list.valid.indexOf(hash) === -1) {
        verdict("unknown", say("not_listed_word"), say("not_listed"));
        return;
      }
      inside[hash] = true;
      var scan = { id: device + "-" + Date.now() + "-" + Math.random().toString(36).slice(2, 8), event_id: eventId,
                   code: code, hash: hash, at: new Date().toISOString() };
      store("queue", "readwrite", function (s) { s.put(scan); }).then(function () { status(); });
      verdict("valid", say("admit_word"), say("admit_offline"));
    });
  }

  function showFlags(flags) {
    var box = document.getElementById("door-flags");
    if (!box) return;
    box.innerHTML = "";
    flags.forEach(function (flag) {
      var item = document.createElement("li");
      var lang = document.documentElement.lang || undefined;
      item.textContent = say("twice", { code: flag.code_end, first_device: flag.first_device,
        first_time: new Date(flag.first_at).toLocaleTimeString(lang), device: flag.device,
        time: new Date(flag.at).toLocaleTimeString(lang) }) + ": " + say(flag.device === device ? "twice_second" : "twice_stands");
      box.appendChild(item);
    });
    box.hidden = !flags.length;
  }

  function sync() {
    if (syncing || !navigator.onLine || !list) return Promise.resolve();
    syncing = true;
    return queued().then(function (scans) {
      return fetch(syncUrl, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
        body: JSON.stringify({ device: device, issued_at: list.issued_at, digest: list.digest, signature: list.signature,
                               scans: scans.map(function (s) { return { id: s.id, code: s.code, at: s.at }; }) })
      }).then(function (response) {
        if (!response.ok) throw new Error("sync " + response.status);
        return response.json();
      }).then(function (answer) {
        return store("queue", "readwrite", function (s) { scans.forEach(function (scan) { s.delete(scan.id); }); })
          .then(function () {
            localStorage.setItem("door-synced-" + eventId, answer.synced_at);
            showFlags(answer.flags);
            root.setAttribute("data-synced", answer.synced_at);
            if (scans.length || Date.now() - listAt > LIST_EVERY_MS) return loadList();
          });
      });
    }).catch(function () { /* still offline, or the server is away: the queue stays for the next try */ })
      .then(function () { syncing = false; status(); });
  }

  document.addEventListener("submit", function (e) {
    var form = document.getElementById("door-form");
    if (e.target !== form || navigator.onLine) return;
    // Offline: decided here; htmx never sees the submit.
    e.preventDefault();
    e.stopImmediatePropagation();
    decide(form.elements.code.value);
    form.elements.code.value = "";
  }, true);

  document.addEventListener("DOMContentLoaded", function () {
    root = document.querySelector("[data-door-offline]");
    if (!root || !window.indexedDB || !window.crypto || !crypto.subtle) return;
    eventId = parseInt(root.getAttribute("data-event"), 10);
    words = JSON.parse(root.getAttribute("data-words") || "{}");
    codesUrl = root.getAttribute("data-codes-url");
    syncUrl = root.getAttribute("data-sync-url");
    csrf = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"];
    device = localStorage.getItem("door-device");
    if (!device) {
      device = "gate-" + Math.random().toString(36).slice(2, 8);
      localStorage.setItem("door-device", device);
    }
    root.setAttribute("data-device", device);
    if ("serviceWorker" in navigator) navigator.serviceWorker.register(root.getAttribute("data-worker")).catch(function () {});
    window.addEventListener("online", function () { status(); sync(); });
    window.addEventListener("offline", function () { status(); });
    loadList().then(function () {
      root.setAttribute("data-list-ready", list ? "1" : "0");
      status();
      return sync();
    });
    window.setInterval(sync, SYNC_EVERY_MS);
  });
})();
