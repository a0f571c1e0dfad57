// The door's service worker: the door pages and their scripts open without a network once visited.
// Pages: network first, the last copy when offline. Scripts and styles: the copy cached at install.
// Check-ins, syncs and the code list are never cached (the page keeps the list in IndexedDB).
"use strict";
var CACHE = "ticketbooth-door-v1";
var ASSETS = {{ assets | tojson }};

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(CACHE).then(function (cache) { return cache.addAll(ASSETS); }));
  self.skipWaiting();
});

self.addEventListener("activate", function (event) {
  event.waitUntil(self.clients.claim());
});

self.addEventListener("fetch", function (event) {
  var request = event.request;
  var url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname.endsWith("/codes.json")) return;
  if (ASSETS.indexOf(url.pathname) !== -1) {
    event.respondWith(caches.match(request).then(function (hit) { return hit || fetch(request); }));
    return;
  }
  if (url.pathname.indexOf("/door/") === 0 || url.pathname === "/door") {
    event.respondWith(fetch(request).then(function (response) {
      var copy = response.clone();
      if (response.ok) caches.open(CACHE).then(function (cache) { cache.put(request, copy); });
      return response;
    }).catch(function () { return caches.match(request); }));
  }
});
