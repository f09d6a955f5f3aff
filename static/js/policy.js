// Password policy screen: show what current guidance says beside an option while it is on.
(function () {
  "use strict";
  function isOn(input) {
    if (!input) { return false; }
    if (input.type === "checkbox") { return input.checked; }
    var value = (input.value || "").trim();
    return value !== "" && value !== "0";
  }
  function update(form) {
    form.querySelectorAll("[data-guidance]").forEach(function (note) {
      var names = note.getAttribute("data-guidance").split(" ");
      var on = names.some(function (name) { return isOn(form.elements[name]); });
      note.hidden = !on;
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var form = document.querySelector(".policy-form");
    if (!form) { return; }
    form.addEventListener("input", function () { update(form); });
    form.addEventListener("change", function () { update(form); });
  });
})();
