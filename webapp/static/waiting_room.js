// The waiting room page: the position from the room's shared now.json and this page's own number.
// Everyone in a room asks for the same small, cacheable resource; the page asks the server about
// itself (its status partial) only when its number comes up, or it has no number yet. A page
// waiting for the start reads its number, once drawn, from the draw's published numbers (a public
// file per thousand places), not from a request of its own. The room's state changes (a pause,
// sold out, back from sold out, open to everyone, switched off) a page with a number shows itself,
// from blocks its status partial drew hidden: a whole room asking at once is what these moments
// must not cause. The arithmetic is positions.estimate_position's.
(function () {
  "use strict";

  function estimatePosition(number, served, issued, left) {
    var between = number - served - 1;
    if (between <= 0 || left <= 0) return Math.max(1, between + 1);
    var others = Math.max(1, issued - served - 1);
    var leaversAhead = Math.min(left, Math.floor(left * between / others + 0.5));
    return Math.max(1, Math.min(between - leaversAhead + 1, issued - served - left));
  }

  function strong(text, id) {
    var el = document.createElement("strong");
    if (id) el.id = id;
    el.textContent = text;
    return el;
  }

  // The sentences are the page's language, given by the status section (_waiting_room_status.html: data-say).
  function sentence(parts, text, values) {
    // "{name}" in the template becomes values[name]: a <strong> element, or text.
    text.split(/(\{[a-z]+\})/).forEach(function (piece) {
      var name = piece.charAt(0) === "{" ? piece.slice(1, -1) : null;
      parts.append(name && name in values ? values[name] : piece);
    });
  }

  function draw(el, now, number) {
    var say = JSON.parse(el.getAttribute("data-say") || "{}");
    var lang = document.documentElement.lang || undefined;
    var ahead = estimatePosition(number, now.served, now.issued, now.left) - 1;
    var text = document.getElementById("waiting-room-position-text");
    if (text) {
      text.textContent = "";
      if (ahead === 0) {
        text.appendChild(strong(say.next));
      } else {
        sentence(text, ahead === 1 ? say.position_one : say.position_many, {
          position: strong((ahead + 1).toLocaleString(lang), "waiting-room-position-number"),
          ahead: strong(ahead.toLocaleString(lang)) });
      }
    }
    var wait = document.getElementById("waiting-room-wait");
    var minutes = now.minutes_per_1000 ? Math.ceil(ahead * now.minutes_per_1000 / 1000) : null;
    if (wait) {
      wait.textContent = minutes === null || ahead === 0 ? "" :
        " " + (minutes <= 1 ? say.wait_one : say.wait_many.replace("{minutes}", minutes.toLocaleString(lang)));
    }
    var served = document.getElementById("waiting-room-served");
    if (served) {
      served.textContent = now.served ? say.served.replace("{served}", now.served.toLocaleString(lang)) : say.nobody;
    }
    var bar = document.getElementById("waiting-room-progress");
    if (bar && number > 1) bar.value = Math.floor(100 * Math.min(now.served, number - 1) / (number - 1));
    // Far back, asking less often loses nothing (as Standing.poll_seconds).
    var base = parseInt(el.dataset.pollSeconds, 10) || 5;
    var most = parseInt(el.dataset.maxPollSeconds, 10) || 30;
    return minutes === null ? base : Math.min(most, Math.max(base, minutes * 60 / 5));
  }

  var PAUSE = { paused: true, admitting: true };
  // The block of the status partial (_waiting_room_status.html) the server draws for each state of the room.
  var BLOCK = { admitting: "waiting-room-waiting", paused: "waiting-room-waiting", sold_out: "waiting-room-sold-out",
                open: "waiting-room-open", off: "waiting-room-open" };

  // A live region revealed with its words already in it is not read out by every screen reader: its
  // words go in again once it is shown, as a change of what it says.
  function announce(block) {
    window.setTimeout(function () {
      block.querySelectorAll('[role="status"]').forEach(function (region) {
        var words = Array.prototype.slice.call(region.childNodes);
        region.textContent = "";
        words.forEach(function (node) { region.appendChild(node); });
      });
    }, 100);
  }

  // Shows the block the server draws for the room's `state`, as a fresh status would; false if this page has none.
  function show(el, state) {
    var wanted = BLOCK[state] && document.getElementById(BLOCK[state]);
    if (!wanted) return false;
    var revealed = wanted.hidden;
    Object.keys(BLOCK).forEach(function (name) {
      var block = document.getElementById(BLOCK[name]);
      if (block) block.hidden = block !== wanted;
    });
    var note = document.getElementById("waiting-room-paused");
    if (note) note.hidden = state !== "paused";
    el.dataset.state = state;
    if (revealed) announce(wanted);
    return true;
  }

  function askAboutMe(el, within, turn) {
    if (el.dataset.asked || !window.htmx) return;
    el.dataset.asked = "1";
    // A page whose number came up says so (?turn=): the proxy sends it to the shop's processes, as
    // it does everything the people let in ask, never to the queue of the crowd's joins.
    var url = el.dataset.statusUrl + (turn ? (el.dataset.statusUrl.indexOf("?") < 0 ? "?" : "&") + "turn=" + turn : "");
    // A change the whole room sees at once (the sale starting, to pages without a number): each
    // page asks within `within` seconds, not all in the same one.
    window.setTimeout(function () {
      window.htmx.ajax("GET", url, { source: el, target: el, swap: "outerHTML" });
    }, 1000 * (within || 0) * Math.random());
    // Answered, the element is replaced; not answered (the network, a 503), this page asks again later.
    window.setTimeout(function () { delete el.dataset.asked; }, 1000 * ((within || 0) + 10));
  }

  // A page waiting for the start tries the draw's numbers this often, this many times, then asks for its status.
  var DRAW_RETRY_SECONDS = 2;
  var DRAW_TRIES = 15;

  // This place's number in the draw's published numbers (0: not there yet).
  function fromDraw(el) {
    return window.fetch(el.dataset.drawUrl, { credentials: "same-origin" }).then(function (answer) {
      return answer.ok ? answer.json() : null;
    }).then(function (draw) {
      return draw && draw.numbers ? (draw.numbers[el.dataset.place] || 0) : 0;
    }).catch(function () { return 0; });
  }

  // The page becomes a numbered one: the blocks drawn hidden for it replace the countdown, and the
  // leave form goes with the position, as in a numbered page's status.
  function numbered(el, number) {
    el.dataset.number = String(number);
    delete el.dataset.drawUrl;
    var waiting = document.getElementById(BLOCK.admitting);
    var leave = document.getElementById("waiting-room-leave-form");
    if (waiting && leave) waiting.appendChild(leave);
    var before = document.getElementById("waiting-room-before");
    if (before) before.hidden = true;
    var hint = document.getElementById("waiting-room-number-hint");
    var shown = hint && hint.querySelector("strong");
    if (shown) shown.textContent = number.toLocaleString(document.documentElement.lang || undefined);
  }

  // What the page does with the room's state; how many seconds until it asks again.
  function follow(el, now) {
    var seconds = parseInt(el.dataset.pollSeconds, 10) || 5;
    var number = parseInt(el.dataset.number || "0", 10);
    if (number && now.served >= number && now.state !== "open" && now.state !== "off") {
      // Its number came up (sold out since or not: a place let in keeps its turn): its pass.
      askAboutMe(el, 0, number);
    } else if (number && show(el, now.state)) {
      if (BLOCK[now.state] === BLOCK.admitting) {
        seconds = draw(el, now, number);
      } else if (now.state === "sold_out") {
        // Told already; the room only moves again if tickets come back and nobody on the waiting list takes them.
        seconds = parseInt(el.dataset.maxPollSeconds, 10) || 30;
      } else {
        delete el.dataset.nowUrl;  // everyone may buy: nothing more to wait for, as the server's drawing says
      }
    } else if (now.state !== el.dataset.state && !(PAUSE[now.state] && PAUSE[el.dataset.state])) {
      // The sale started, or a page without a number (its status is its own): spread over ten seconds.
      askAboutMe(el, 10);
    } else {
      el.dataset.state = now.state;
    }
    return seconds;
  }

  // The sale started and the draw is made: the page finds its number among the draw's, then follows the room.
  function learnFromDraw(el, now) {
    var tries = (parseInt(el.dataset.drawTries || "0", 10) || 0) + 1;
    el.dataset.drawTries = String(tries);
    return fromDraw(el).then(function (number) {
      if (number) {
        numbered(el, number);
        return follow(el, now);
      }
      if (tries >= DRAW_TRIES) {
        delete el.dataset.drawUrl;  // not there after half a minute: this page asks for its own status
        return follow(el, now);
      }
      return DRAW_RETRY_SECONDS;
    });
  }

  function poll() {
    var el = document.getElementById("waiting-room-status");
    if (!el || !el.dataset.nowUrl || el.dataset.asked || document.visibilityState !== "visible") return;
    var due = parseFloat(el.dataset.nextPoll || "0");
    if (!due) {
      // The first ask of a page just drawn, spread so a crowd drawn together does not ask together.
      el.dataset.nextPoll = String(Date.now() + 1000 * (parseInt(el.dataset.pollSeconds, 10) || 5) * (0.5 + Math.random()));
      if (el.dataset.startsIn) {
        // The countdown's end: the room's state is asked for within two seconds of it, spread.
        el.dataset.startAt = String(Date.now() + 1000 * (parseInt(el.dataset.startsIn, 10) + 2 * Math.random()));
      }
      return;
    }
    if (el.dataset.startAt && el.dataset.drawUrl && Date.now() >= parseFloat(el.dataset.startAt)) {
      due = Math.min(due, parseFloat(el.dataset.startAt));
      delete el.dataset.startAt;
    }
    if (Date.now() < due || el.dataset.polling) return;
    el.dataset.polling = "1";
    window.fetch(el.dataset.nowUrl, { credentials: "same-origin" }).then(function (answer) {
      return answer.ok ? answer.json() : null;
    }).then(function (now) {
      if (!now) return parseInt(el.dataset.pollSeconds, 10) || 5;
      if (el.dataset.drawUrl && !el.dataset.number && BLOCK[now.state] && BLOCK[now.state] !== BLOCK.open) {
        return learnFromDraw(el, now);
      }
      return follow(el, now);
    }).then(function (seconds) {
      el.dataset.nextPoll = String(Date.now() + 1000 * seconds);
    }).catch(function () {
      el.dataset.nextPoll = String(Date.now() + 5000);
    }).then(function () {
      delete el.dataset.polling;
    });
  }
  window.setInterval(poll, 1000);
})();
