// A button with data-confirm asks before its form is sent (receiving a colleague's item, for example).
// Only the pages with such buttons load it: the phone's scan page stays free of JavaScript.
document.addEventListener("submit", function (ev) {
  var button = ev.submitter;
  var question = button && button.getAttribute("data-confirm");
  if (question && !window.confirm(question)) ev.preventDefault();
});
