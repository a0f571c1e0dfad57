// Small behaviours htmx does not cover. The server stays the authority:
// the countdown ticks locally between its polls of /holds/<id>/countdown.
(function () {
  "use strict";

  function tick() {
    document.querySelectorAll("#countdown[data-seconds-left]").forEach(function (el) {
      var left = parseInt(el.dataset.secondsLeft, 10);
      if (isNaN(left) || left <= 0) return;
      left -= 1;
      el.dataset.secondsLeft = String(left);
      var label = el.querySelector(".time-left");
      if (label) label.textContent = Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
      var bar = el.querySelector("progress");
      if (bar) bar.value = left;
      if (left === 0 && window.htmx && el.getAttribute("hx-get")) {
        // Ask the server for its verdict the moment time runs out.
        window.htmx.ajax("GET", el.getAttribute("hx-get"), { target: el, swap: "outerHTML" });
      }
    });
  }
  setInterval(tick, 1000);
})();
