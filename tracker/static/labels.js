// Download label files with a progress bar; without JavaScript the form posts and downloads directly.
// The scheduler process makes the file; this page asks how far it is, and offers a retry when it failed.
(function () {
  var form = document.getElementById("label-form");
  if (!form || !window.fetch) return;
  var box = document.getElementById("label-progress");
  var bar = box.querySelector("progress");
  var text = box.querySelector("span");
  var again = box.querySelector("button");
  var csrf = form.querySelector("input[name=csrf_token]");

  function follow(job) {
    bar.max = job.total;
    again.hidden = true;
    (function poll() {
      fetch(job.status, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (s) {
        bar.value = s.done;
        text.textContent = s.waiting ? box.getAttribute("data-waiting") : s.done + " / " + s.total;
        if (s.failed) {
          text.textContent = s.error === "stalled" ? box.getAttribute("data-stalled") : s.error;
          again.hidden = false;
          again.onclick = function () {
            var body = new FormData();
            body.set("csrf_token", csrf ? csrf.value : "");
            fetch(job.retry, { method: "POST", body: body, credentials: "same-origin" })
              .then(function (r) { return r.json(); }).then(follow);
          };
          return;
        }
        if (s.finished) { window.location = job.file; return; }
        setTimeout(poll, 500);
      });
    })();
  }

  // The button says what the file will hold before anything is made: labels, and sheets for a PDF.
  var selection = document.querySelector("#label-selection span");
  var button = document.getElementById("label-download");
  var layout = form.elements.layout;
  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_, k) { return values[k]; });
  }
  function perPage() {
    var v = layout.options[layout.selectedIndex].getAttribute("data-per-page");
    if (v !== "custom") return +v;
    var cols = Math.floor(+form.elements.cols.value), rows = Math.floor(+form.elements.rows.value);
    return cols > 0 && rows > 0 ? cols * rows : 0;
  }
  function count() {
    var ticked = form.querySelectorAll("input[name=id]:checked, input[type=hidden][name=id]").length;
    var matching = +form.getAttribute("data-matching");
    var sel = document.getElementById("label-selection");
    selection.textContent = fill(sel.getAttribute(ticked ? "data-ticked" : "data-matching"), { n: ticked || matching });
    var fmt = form.elements.format.value;
    var labels = fmt === "png" ? Math.min(ticked || matching, 1) : ticked || matching;
    var per = perPage();
    if (fmt === "pdf" && per > 0) {
      var start = Math.min(Math.max(1, Math.floor(+form.elements.start_at.value) || 1), per);
      var sheets = labels ? Math.ceil((start - 1 + labels) / per) : 0;
      button.textContent = fill(button.getAttribute("data-sheets"), { labels: labels, sheets: sheets, per: per });
    } else {
      button.textContent = fill(button.getAttribute("data-each"), { labels: labels });
    }
  }
  form.addEventListener("change", count);
  form.addEventListener("input", count);

  form.addEventListener("submit", function (ev) {
    var submitter = ev.submitter;
    if (submitter && submitter.getAttribute("formmethod") === "get" && csrf) {
      csrf.disabled = true; // paging and the print view: the token stays out of the address
      setTimeout(function () { csrf.disabled = false; }, 0);
    }
    if (submitter && submitter.getAttribute("formaction")) return; // print view, paging, printer: plain submit
    ev.preventDefault();
    var data = new FormData(form);
    data.set("async", "1");
    box.hidden = false;
    bar.value = 0;
    text.textContent = "…";
    fetch(form.action, { method: "POST", body: data, credentials: "same-origin" })
      .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, body: j }; }); })
      .then(function (res) {
        if (!res.ok) { text.textContent = res.body.error || "Error"; return; }
        follow(res.body);
      })
      .catch(function () { form.submit(); });
  });
})();
