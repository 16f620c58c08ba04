// Download label files with a progress bar; without JavaScript the form posts and downloads directly.
(function () {
  var form = document.getElementById("label-form");
  if (!form || !window.fetch) return;
  var box = document.getElementById("label-progress");
  var bar = box.querySelector("progress");
  var text = box.querySelector("span");
  form.addEventListener("submit", function (ev) {
    var submitter = ev.submitter;
    if (submitter && submitter.getAttribute("formaction")) return; // print view and printer: plain submit
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
        var job = res.body;
        bar.max = job.total;
        (function poll() {
          fetch(job.status, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (s) {
            bar.value = s.done;
            text.textContent = s.done + " / " + s.total;
            if (s.error) { text.textContent = s.error; return; }
            if (s.finished) { window.location = job.file; return; }
            setTimeout(poll, 400);
          });
        })();
      })
      .catch(function () { form.submit(); });
  });
})();
