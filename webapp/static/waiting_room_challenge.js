// The join form's proof of work: the vendored ALTCHA widget (loaded as a module before this script) solves
// PBKDF2 challenges in a worker served from our own origin, so the Content-Security-Policy needs no exception.
(function () {
  "use strict";
  var script = document.currentScript;
  if (!window.$altcha || !script) return;
  var workerUrl = script.dataset.worker;
  window.$altcha.algorithms.set("PBKDF2/SHA-256", function () { return new Worker(workerUrl); });
})();
