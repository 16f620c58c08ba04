// The desk board refreshes its table every 10 seconds without reloading the page. When a refresh fails, or the
// session has ended, a large banner says so instead of leaving a silently frozen table on the wall.
(function () {
  var box = document.getElementById("board-rows");
  var banner = document.getElementById("board-offline");
  if (!box || !window.fetch) return;
  function show(kind) {
    if (!banner) return;
    banner.hidden = !kind;
    if (kind) banner.textContent = banner.getAttribute(kind === "signin" ? "data-signin" : "data-lost");
  }
  function refresh() {
    fetch(box.getAttribute("data-src"), { credentials: "same-origin", redirect: "follow",
                                           headers: { "Accept": "text/html", "X-Background-Refresh": "1" } })
      .then(function (r) {
        if (r.redirected || r.status === 401 || r.status === 403) { show("signin"); return null; }
        if (!r.ok) throw new Error(r.status);
        return r.text();
      })
      .then(function (html) { if (html !== null) { box.innerHTML = html; show(null); } })
      .catch(function () { show("lost"); })
      .finally(function () { setTimeout(refresh, 10000); });
  }
  setTimeout(refresh, 10000);
})();
