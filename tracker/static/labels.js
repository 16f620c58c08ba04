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
        follow(res.body);
      })
      .catch(function () { form.submit(); });
  });
})();
