// A "who" field (an input with data-people) suggests people as one types: the names and addresses that
// /people/suggest finds fill the field's <datalist>, and choosing one writes "Name <address>", which names that
// person exactly. Without this script the field still takes a whole name or an e-mail address.
(function () {
  function suggest(input) {
    var list = document.getElementById(input.getAttribute("list"));
    var url = input.getAttribute("data-people");
    var timer = null;
    var asked = "";
    input.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(function () {
        var typed = input.value.trim();
        if (typed === asked || typed.indexOf("<") !== -1) return;  // the same, or a suggestion already chosen
        asked = typed;
        if (!typed) { list.textContent = ""; return; }
        fetch(url + "?q=" + encodeURIComponent(typed), {credentials: "same-origin", headers: {"Accept": "application/json"}})
          .then(function (resp) { return resp.ok ? resp.json() : {people: []}; })
          .then(function (found) {
            if (input.value.trim() !== typed) return;  // typed on meanwhile: that answer is coming
            list.textContent = "";
            found.people.forEach(function (person) {
              var option = document.createElement("option");
              option.value = person.value;
              list.appendChild(option);
            });
          })
          .catch(function () { asked = ""; });  // offline for a moment: ask again at the next key
      }, 150);
    });
  }
  document.querySelectorAll("input[data-people]").forEach(suggest);
})();
