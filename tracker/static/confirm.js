// A button with data-confirm asks before its form is sent (receiving a colleague's item, for example).
document.addEventListener("submit", function (ev) {
  var button = ev.submitter;
  var question = button && button.getAttribute("data-confirm");
  if (question && !window.confirm(question)) ev.preventDefault();
});
