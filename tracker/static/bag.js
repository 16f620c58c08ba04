// Returning a bag: a scan (or typed tag) of each content item ticks its box.
(function () {
  var input = document.getElementById("content-scan");
  if (!input) return;
  input.parentNode.hidden = false;
  input.addEventListener("keydown", function (ev) {
    if (ev.key !== "Enter") return;
    ev.preventDefault();
    var code = input.value.trim().toUpperCase();
    input.value = "";
    var match = code.match(/\/S\/([A-Z2-7]+)\/?$/);
    var boxes = document.querySelectorAll("input[name=present]");
    for (var i = 0; i < boxes.length; i++) {
      var b = boxes[i];
      if ((match && b.getAttribute("data-token") === match[1]) || b.getAttribute("data-tag") === code) {
        b.checked = true;
        if (navigator.vibrate) navigator.vibrate(60);
        return;
      }
    }
    if (navigator.vibrate) navigator.vibrate([150, 80, 150]);
  });
})();
