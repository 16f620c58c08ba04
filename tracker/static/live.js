// A page that waits for someone else (a take-out request waiting for its approvers) keeps itself current without
// reloading: every 10 seconds it fetches its changing part (the element's data-live-src) and puts each
// [data-part] of the answer in place, until the answer no longer says it waits (data-waiting).
(function () {
  var box = document.querySelector("[data-live-src]");
  if (!box || !window.fetch) return;
  function waiting() { return !!box.querySelector("[data-waiting]"); }
  function swap(html) {
    var answer = document.createElement("template");
    answer.innerHTML = html;
    answer.content.querySelectorAll("[data-part]").forEach(function (part) {
      var current = box.querySelector('[data-part="' + part.getAttribute("data-part") + '"]');
      if (current && current.outerHTML !== part.outerHTML) current.replaceWith(part);
    });
  }
  function refresh() {
    fetch(box.getAttribute("data-live-src"), { credentials: "same-origin",
                                               headers: { "Accept": "text/html", "X-Background-Refresh": "1" } })
      .then(function (r) { if (!r.ok || r.redirected) throw new Error(r.status); return r.text(); })
      .then(swap)
      .catch(function () {})  // a lost connection: try again at the next turn
      .finally(function () { if (waiting()) setTimeout(refresh, 10000); });
  }
  if (waiting()) setTimeout(refresh, 10000);
})();
