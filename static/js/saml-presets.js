// Single sign-on: choosing the Okta or Entra ID preset fills the attribute names it sends,
// replacing only names that are empty or still those of another preset.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var select = document.querySelector("select[data-presets]");
    if (!select) {
      return;
    }
    var presets = JSON.parse(select.getAttribute("data-presets"));
    var known = {};
    Object.keys(presets).forEach(function (preset) {
      Object.keys(presets[preset]).forEach(function (field) {
        known[field] = known[field] || [];
        known[field].push(presets[preset][field]);
      });
    });
    select.addEventListener("change", function () {
      var values = presets[select.value];
      if (!values) {
        return;
      }
      Object.keys(values).forEach(function (field) {
        var input = select.form.querySelector("[name='" + field + "']");
        if (input && (input.value === "" || known[field].indexOf(input.value) !== -1)) {
          input.value = values[field];
        }
      });
    });
  });
})();
