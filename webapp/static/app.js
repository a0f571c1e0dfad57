// Small behaviours htmx does not cover. The server stays the authority for
// seat states and for the time left on a hold; this only draws its answers.
(function () {
  "use strict";

  // ---- Hold countdown: ticks locally between polls of /holds/<id>/countdown.
  // The waiting room's countdown to the sale start ticks the same way.
  function tick() {
    document.querySelectorAll("#countdown[data-seconds-left], #waiting-room-countdown[data-seconds-left]").forEach(function (el) {
      var left = parseInt(el.dataset.secondsLeft, 10);
      if (isNaN(left) || left <= 0) return;
      left -= 1;
      el.dataset.secondsLeft = String(left);
      var label = el.querySelector(".time-left");
      if (label) {
        // Waiting-list offers last hours, baskets minutes: h:mm:ss or m:ss.
        var mm = String(Math.floor(left / 60) % 60), ss = String(left % 60).padStart(2, "0");
        label.textContent = left >= 3600 ? Math.floor(left / 3600) + ":" + mm.padStart(2, "0") + ":" + ss
                                         : Math.floor(left / 60) + ":" + ss;
      }
      var bar = el.querySelector("progress");
      if (bar) bar.value = left;
      // The timer itself is not live (a screen reader would read every tick);
      // say it out loud once, when a minute is left.
      var say = el.querySelector(".time-warning");
      if (say && left === 60) say.textContent = say.dataset.say;
      if (left === 0 && window.htmx && el.hasAttribute("data-refresh-url")) {
        // The sale starts: ask the waiting room for this buyer's position, within a
        // couple of seconds (the draw is made; asking first gains nothing,
        // and the whole crowd asking in the same instant would queue).
        window.setTimeout(function () {
          window.htmx.ajax("GET", el.getAttribute("data-refresh-url"),
                           { source: el, target: el.getAttribute("data-refresh-target"), swap: "outerHTML" });
        }, Math.random() * 2000);
      } else if (left === 0 && window.htmx && el.getAttribute("hx-get")) {
        // Ask the server for its verdict the moment time runs out.
        window.htmx.ajax("GET", el.getAttribute("hx-get"), { source: el, target: el, swap: "outerHTML" });
      }
    });
  }
  setInterval(tick, 1000);

  // ---- Live seat states, carried by the #seat-live poller's answer.
  // The words are the page's language, given by the map (_seat_map.html: data-words, data-lost-one/-many).
  var STATES = ["available", "taken", "blocked", "mine"];

  // "Section, row R, seat N, Tier, €price, <status>": the name without its status.
  function seatName(box) {
    return box.getAttribute("aria-label").replace(/, [^,]+$/, "");
  }

  function idSet(el, name) {
    return new Set((el.getAttribute(name) || "").split(" ").filter(Boolean));
  }

  function applySeatStates(live) {
    var map = document.getElementById("seat-map");
    if (!map || !live.hasAttribute("data-taken")) return;
    var WORDS = JSON.parse(map.getAttribute("data-words") || "{}");
    var taken = idSet(live, "data-taken"), blocked = idSet(live, "data-blocked"), mine = idSet(live, "data-mine");
    var lost = [];
    map.querySelectorAll('input[name="seat"]').forEach(function (box) {
      var status = mine.has(box.value) ? "mine" : blocked.has(box.value) ? "blocked"
        : taken.has(box.value) ? "taken" : "available";
      var seat = box.closest(".seat");
      if (seat.classList.contains(status)) return;
      if (status !== "available" && box.checked) {
        box.checked = false;
        lost.push({ id: box.value, name: seatName(box) });
      }
      box.disabled = status !== "available";
      STATES.forEach(function (s) { seat.classList.toggle(s, s === status); });
      box.setAttribute("aria-label", seatName(box) + ", " + WORDS[status]);
    });
    if (lost.length) {
      // Said in the summary dock, which stays on screen wherever the buyer
      // has scrolled to (see _seat_map.html).
      var note = document.getElementById("seat-map-message");
      if (note) {
        note.innerHTML = "";
        var alert = document.createElement("div");
        alert.className = "alert alert-error";
        alert.setAttribute("role", "alert");
        // The seat's place only ("Section, row R, seat N"): section names have no commas.
        alert.textContent = map.getAttribute(lost.length === 1 ? "data-lost-one" : "data-lost-many").replace("{seats}",
          lost.map(function (l) { return l.name.split(", ").slice(0, 3).join(", "); }).join("; "));
        note.appendChild(alert);
      }
      // Sent with Reserve, so that the hold page names what is not in it.
      var dropped = document.getElementById("seat-map-dropped");
      if (dropped) {
        lost.forEach(function (l) {
          var field = document.createElement("input");
          field.type = "hidden";
          field.name = "dropped";
          field.value = l.id;
          dropped.appendChild(field);
        });
      }
      // The summary follows the selection through the form's own htmx trigger.
      map.dispatchEvent(new Event("change", { bubbles: true }));
    }
    initRoving(map);
    applyFigures(live);
  }

  // ---- The same answer's figures: the availability panel's counts, the
  // legend's "Sold out", and Reserve when nothing is left for the public.
  function applyFigures(live) {
    var figures = (live.getAttribute("data-figures") || "").split(" ");
    if (figures.length === 3) {
      ["available", "held", "sold"].forEach(function (name, i) {
        var cell = document.querySelector('#waitlist-panel [data-count="' + name + '"]');
        if (cell && cell.textContent !== figures[i]) cell.textContent = figures[i];
      });
    }
    if (!live.hasAttribute("data-sold-out")) return;
    var soldOut = idSet(live, "data-sold-out");
    var items = document.querySelectorAll("#seat-map .legend li[data-tier]");
    items.forEach(function (item) {
      var badge = item.querySelector(".tier-soldout");
      var out = soldOut.has(item.getAttribute("data-tier"));
      if (out && !badge) {
        badge = document.createElement("span");
        badge.className = "badge badge-soldout tier-soldout";
        badge.setAttribute("data-tier", item.getAttribute("data-tier"));
        badge.textContent = document.getElementById("seat-map").getAttribute("data-sold-out-word");
        item.appendChild(document.createTextNode(" "));
        item.appendChild(badge);
      } else if (!out && badge) {
        badge.remove();
      }
    });
    var map = document.getElementById("seat-map");
    if (map) map.setAttribute("data-sold-out", items.length && soldOut.size >= items.length ? "all" : "");
    applySoldOut();
  }

  function applySoldOut() {
    var map = document.getElementById("seat-map");
    var button = document.getElementById("reserve-button");
    if (!map || !button || !map.hasAttribute("data-sold-out")) return;
    button.disabled = map.getAttribute("data-sold-out") === "all";
  }

  // ---- Keyboard: the map is one tab stop; arrow keys move between free seats
  // by their place in the hall, Space picks (native checkbox behaviour).
  function seatsOf(map) {
    return Array.prototype.slice.call(map.querySelectorAll('input[name="seat"]:not(:disabled)'));
  }

  function initRoving(map) {
    var seats = seatsOf(map);
    if (!seats.length) return;
    var current = seats.filter(function (s) { return s.tabIndex === 0; })[0];
    var all = map.querySelectorAll('input[name="seat"]');
    all.forEach(function (s) { s.tabIndex = -1; });
    current = current && !current.disabled ? current : (seats.filter(function (s) { return s.checked; })[0] || seats[0]);
    current.tabIndex = 0;
  }

  function pos(box) {
    return { x: parseInt(box.dataset.x, 10), y: parseInt(box.dataset.y, 10) };
  }

  function nextSeat(map, from, key) {
    var here = pos(from), best = null, bestScore = Infinity;
    seatsOf(map).forEach(function (box) {
      if (box === from) return;
      var p = pos(box), dx = p.x - here.x, dy = p.y - here.y, score;
      if (key === "ArrowRight" && dy === 0 && dx > 0) score = dx;
      else if (key === "ArrowLeft" && dy === 0 && dx < 0) score = -dx;
      else if (key === "ArrowDown" && dy > 0) score = dy * 1000 + Math.abs(dx);
      else if (key === "ArrowUp" && dy < 0) score = -dy * 1000 + Math.abs(dx);
      else if (key === "Home" && dy === 0 && dx < 0) score = dx;
      else if (key === "End" && dy === 0 && dx > 0) score = -dx;
      else return;
      if (score < bestScore) { best = box; bestScore = score; }
    });
    return best;
  }

  // A seat's tooltip is its checkbox's name, with its state as it is now:
  // set when the pointer comes rather than written into every seat of the page.
  document.addEventListener("mouseover", function (e) {
    var seat = e.target instanceof Element && e.target.closest("#seat-map .seat");
    var box = seat && seat.querySelector('input[name="seat"]');
    if (box) seat.title = box.getAttribute("aria-label");
  });

  document.addEventListener("keydown", function (e) {
    var box = e.target;
    if (!(box instanceof HTMLInputElement) || box.name !== "seat") return;
    if (["ArrowRight", "ArrowLeft", "ArrowUp", "ArrowDown", "Home", "End"].indexOf(e.key) < 0) return;
    var map = box.closest("#seat-map");
    var target = map && nextSeat(map, box, e.key);
    e.preventDefault();
    if (!target) return;
    box.tabIndex = -1;
    target.tabIndex = 0;
    target.focus();
  });

  document.addEventListener("focusin", function (e) {
    var box = e.target;
    if (box instanceof HTMLInputElement && box.name === "seat" && box.tabIndex !== 0) {
      var map = box.closest("#seat-map");
      if (map) map.querySelectorAll('input[name="seat"]').forEach(function (s) { s.tabIndex = s === box ? 0 : -1; });
    }
  });

  function onLoad(elt) {
    var live = elt.id === "seat-live" ? elt : elt.querySelector && elt.querySelector("#seat-live");
    if (live) applySeatStates(live);
    var map = elt.id === "seat-map" ? elt : elt.querySelector && elt.querySelector("#seat-map");
    if (map) initRoving(map);
    // A redrawn summary brings a fresh Reserve button: keep it as the live map says.
    if (elt.id === "selection-summary") applySoldOut();
    // A refused reserve redraws the map or picker with its message beside
    // Reserve; the pressed button went with the old markup, so focus returns
    // to the new one (the message itself is announced: role="alert").
    if ((elt.id === "seat-map" || elt.id === "tier-picker") && elt.querySelector(".map-message [role=alert]")) {
      var again = elt.querySelector("#reserve-button");
      if (again && (document.activeElement === document.body || !document.activeElement)) again.focus();
    }
  }

  // ---- Behaviours that would otherwise be inline script, which the
  // Content-Security-Policy forbids (webapp/security.py).
  document.addEventListener("click", function (e) {
    if (e.target instanceof Element && e.target.closest("[data-print]")) window.print();
  });
  // A form that clears itself after each answer (the check-in scanner form).
  document.addEventListener("htmx:afterRequest", function (e) {
    var form = e.detail.elt;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-reset-after-request")) return;
    form.reset();
    var field = form.elements[form.getAttribute("data-reset-after-request")];
    if (field) field.focus();
  });
  // Pollers that pause while the tab is hidden (an hx-trigger filter would need eval).
  document.addEventListener("htmx:confirm", function (e) {
    if (e.detail.elt.hasAttribute("data-poll-when-visible") && document.visibilityState !== "visible") {
      e.preventDefault();
    }
  });

  // GA steppers: quick clicks must all count. Each click moves the quantity
  // in the page at once and sends the new number (not "+1" on what the
  // server last drew), and a newer click replaces a request still in flight
  // (hx-sync), so two quick clicks end at two steps whatever the order of
  // the answers.
  document.addEventListener("htmx:configRequest", function (e) {
    var button = e.detail.elt;
    if (!(button instanceof HTMLButtonElement) || !button.classList.contains("step") || !button.value) return;
    var parts = button.value.split(":");
    var input = document.getElementById("qty-" + parts[0]);
    if (!input) return;
    var next = Math.max(0, (parseInt(input.value, 10) || 0) + parseInt(parts[1], 10));
    input.value = String(next);
    e.detail.parameters["qty-" + parts[0]] = String(next);
    delete e.detail.parameters["step"];
  });

  // Admin seat map: quick clicks must all count. The form queues its
  // requests (hx-sync "queue all") and persists across answers (only the map
  // inside it is redrawn), so none is dropped; each request carries the seat
  // and the verb of its own click, caught when the click happened (a queued
  // request's values are read only when it is sent), and the seat turns at
  // once, so a second click on it sends the opposite verb.
  document.addEventListener("submit", function (e) {
    var button = e.submitter;
    if (!(button instanceof HTMLButtonElement) || !button.classList.contains("aseat")) return;
    e.seatToggle = { name: button.name, value: button.value };
    var blocking = button.name === "block";
    button.name = blocking ? "unblock" : "block";
    button.classList.toggle("blocked", blocking);
    button.classList.toggle("available", !blocking);
    button.classList.add("pending");
    var label = button.getAttribute("aria-label") || "";
    button.setAttribute("aria-label", label.replace(/^(Block|Unblock) /, blocking ? "Unblock " : "Block ")
      .replace(/(available|blocked)\)$/, blocking ? "blocked)" : "available)"));
  }, true);
  document.addEventListener("htmx:configRequest", function (e) {
    var toggle = e.detail.triggeringEvent && e.detail.triggeringEvent.seatToggle;
    if (!toggle) return;
    delete e.detail.parameters.block;
    delete e.detail.parameters.unblock;
    e.detail.parameters[toggle.name] = toggle.value;
  });

  // htmx (loaded just before this file) reports the first page load too.
  if (window.htmx) window.htmx.onLoad(onLoad);
  else document.addEventListener("DOMContentLoaded", function () { onLoad(document.body); });
})();

// The seat map's zoom (phones): the buttons scale the seats through --zoom;
// the hall scrolls to pan. Kept across the map's htmx swaps.
(function () {
  "use strict";
  var zoom = 1;
  function apply() {
    var hall = document.querySelector("#seat-map .hall");
    if (hall) hall.style.setProperty("--zoom", String(zoom));
  }
  document.addEventListener("click", function (e) {
    var button = e.target.closest && e.target.closest("[data-map-zoom]");
    if (!button) return;
    var how = button.getAttribute("data-map-zoom");
    zoom = how === "in" ? Math.min(3, zoom * 1.5) : how === "out" ? Math.max(1, zoom / 1.5) : 1;
    apply();
  });
  document.addEventListener("htmx:afterSettle", apply);

  // ---- The seat list: after a step is swapped in, the focus goes to its
  // heading, so a screen reader says where the buyer now is and Tab
  // continues from there (not from the top of the page).
  document.addEventListener("htmx:afterSettle", function (evt) {
    var target = evt.detail && evt.detail.target;
    if (!target || target.id !== "seat-list") return;
    var heading = document.getElementById("seat-list-heading");
    if (heading) heading.focus();
  });
})();
