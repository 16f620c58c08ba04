// Desk returns scanner: each scan is sent without reloading the page; a tone and a vibration per result.
(function () {
  var form = document.getElementById("scan-form");
  var input = document.getElementById("code");
  var list = document.getElementById("results");
  var photoForm = document.getElementById("photo-form");
  var audio = null;
  function tone(ok) {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      var o = audio.createOscillator(), g = audio.createGain();
      o.frequency.value = ok ? 880 : 220;
      g.gain.value = 0.1;
      o.connect(g); g.connect(audio.destination);
      o.start(); o.stop(audio.currentTime + (ok ? 0.12 : 0.4));
    } catch (e) { /* no sound available */ }
    if (navigator.vibrate) navigator.vibrate(ok ? 80 : [200, 100, 200]);
  }
  function show(result) {
    var li = document.createElement("li");
    li.className = result.ok ? "ok" : "bad";
    li.textContent = result.message;
    if (result.link) {
      var a = document.createElement("a");
      a.href = result.link; a.textContent = " \u2192";
      li.appendChild(a);
    }
    list.insertBefore(li, list.firstChild);
    tone(result.ok);
  }
  function send(body) {
    body.set("js", "1");
    return fetch(form.action || window.location.pathname, { method: "POST", body: body, credentials: "same-origin",
      headers: { "Accept": "application/json" } })
      .then(function (r) { return r.json(); }).then(show)
      .catch(function () { show({ ok: false, message: "Network error" }); });
  }
  var queue = Promise.resolve();
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var code = input.value.trim();
    input.value = "";
    input.focus();
    if (!code) return;
    var body = new FormData(form);
    body.set("code", code);
    queue = queue.then(function () { return send(body); });  // scans keep their order
  });
  photoForm.addEventListener("submit", function (ev) {
    ev.preventDefault();
    queue = queue.then(function () { return send(new FormData(photoForm)); });
    photoForm.reset();
  });
  if ("BarcodeDetector" in window && navigator.mediaDevices) {
    var button = document.getElementById("camera-start");
    var video = document.getElementById("camera");
    button.hidden = false;
    button.addEventListener("click", function () {
      var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
      var last = "", lastAt = 0;
      navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } }).then(function (stream) {
        video.srcObject = stream; video.hidden = false; video.play(); button.hidden = true;
        (function tick() {
          detector.detect(video).then(function (codes) {
            var now = Date.now();
            if (codes.length && (codes[0].rawValue !== last || now - lastAt > 3000)) {
              last = codes[0].rawValue; lastAt = now;
              var body = new FormData(form);
              body.set("code", last);
              queue = queue.then(function () { return send(body); });
            }
          }).finally(function () { setTimeout(tick, 250); });
        })();
      });
    });
  }
})();
