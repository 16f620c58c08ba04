// The desk board refreshes itself every 10 seconds without reloading the page: the list of what is out and,
// beside it, the finders' reports and the requests waiting for approval. Each part of the answer replaces the
// page's element of the same id, keeping what the desk had ticked or typed there. When a refresh fails, or the
// session has ended, a large banner says so instead of leaving a silently frozen table on the wall.
(function () {
  var box = document.getElementById("board-rows");
  var banner = document.getElementById("board-offline");
  var last = {};
  if (!box || !window.fetch) return;
  function show(kind) {
    if (!banner) return;
    banner.hidden = !kind;
    if (kind) banner.textContent = banner.getAttribute(kind === "signin" ? "data-signin" : "data-lost");
  }
  function kept(el) {
    var state = { ticked: {}, typed: {}, focus: null };
    el.querySelectorAll("input[type=checkbox]:checked").forEach(function (c) { state.ticked[c.name + "=" + c.value] = true; });
    el.querySelectorAll("input[id]:not([type=checkbox]):not([type=hidden]), textarea[id]").forEach(function (i) {
      if (i.value) state.typed[i.id] = i.value;
    });
    if (el.contains(document.activeElement) && document.activeElement.id) state.focus = document.activeElement.id;
    return state;
  }
  function restore(el, state) {
    el.querySelectorAll("input[type=checkbox]").forEach(function (c) {
      if (state.ticked[c.name + "=" + c.value]) c.checked = true;
    });
    Object.keys(state.typed).forEach(function (id) {
      var input = document.getElementById(id);
      if (input && el.contains(input)) input.value = state.typed[id];
    });
    var focus = state.focus && document.getElementById(state.focus);
    if (focus) focus.focus();
  }
  function swap(html) {
    var answer = document.createElement("template");
    answer.innerHTML = html;
    answer.content.querySelectorAll("[data-part]").forEach(function (part) {
      var id = part.getAttribute("data-part");
      var target = document.getElementById(id);
      if (!target || last[id] === part.innerHTML) return;  // unchanged: leave it (and the desk's hands) alone
      var state = kept(target);
      last[id] = part.innerHTML;
      target.innerHTML = part.innerHTML;
      restore(target, state);
    });
  }
  function refresh() {
    fetch(box.getAttribute("data-src"), { credentials: "same-origin", redirect: "follow",
                                           headers: { "Accept": "text/html", "X-Background-Refresh": "1" } })
      .then(function (r) {
        if (r.redirected || r.status === 401 || r.status === 403) { show("signin"); return null; }
        if (!r.ok) throw new Error(r.status);
        return r.text();
      })
      .then(function (html) { if (html !== null) { swap(html); show(null); } })
      .catch(function () { show("lost"); })
      .finally(function () { setTimeout(refresh, 10000); });
  }
  setTimeout(refresh, 10000);
})();
