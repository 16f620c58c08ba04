// The desk board refreshes its table every 10 seconds without reloading the page.
(function () {
  var box = document.getElementById("board-rows");
  if (!box || !window.fetch) return;
  function refresh() {
    fetch(box.getAttribute("data-src"), { credentials: "same-origin", headers: { "Accept": "text/html", "X-Background-Refresh": "1" } })
      .then(function (r) { if (r.ok && !r.redirected) return r.text(); throw new Error(r.status); })
      .then(function (html) { box.innerHTML = html; })
      .catch(function () { /* keep the last table; try again next time */ })
      .finally(function () { setTimeout(refresh, 10000); });
  }
  setTimeout(refresh, 10000);
})();
