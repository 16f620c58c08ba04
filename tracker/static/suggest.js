// A field with data-suggest (a URL) offers suggestions as one types: the URL, asked with ?q= and what was typed,
// answers {"suggestions": [...]}, which fill the field's <datalist>; choosing one writes it into the field. Used by
// the "who" fields (accounts/people.py). Without this script the field still takes what is typed whole.
(function () {
  function suggest(input) {
    var list = document.getElementById(input.getAttribute("list"));
    var url = input.getAttribute("data-suggest");
    var timer = null;
    var asked = "";
    input.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(function () {
        var typed = input.value.trim();
        if (typed === asked) return;
        asked = typed;
        if (!typed) { list.textContent = ""; return; }
        fetch(url + "?q=" + encodeURIComponent(typed), {credentials: "same-origin", headers: {"Accept": "application/json"}})
          .then(function (resp) { return resp.ok ? resp.json() : {suggestions: []}; })
          .then(function (found) {
            if (input.value.trim() !== typed) return;  // typed on meanwhile: that answer is coming
            list.textContent = "";
            found.suggestions.forEach(function (value) {
              var option = document.createElement("option");
              option.value = value;
              list.appendChild(option);
            });
          })
          .catch(function () { asked = ""; });  // offline for a moment: ask again at the next key
      }, 150);
    });
  }
  document.querySelectorAll("input[data-suggest]").forEach(suggest);
})();
