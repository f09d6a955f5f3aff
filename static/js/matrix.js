// The matrix editor and the permission tables: highlight changed cells, set a whole category,
// filter areas by text. Every page works without this file (the server does the same).
(function () {
  "use strict";

  function rowsOf(root) {
    return Array.prototype.slice.call(root.querySelectorAll("[data-matrix-row]"));
  }

  function refreshCount(form) {
    var changed = form.querySelectorAll(".matrix__row.is-changed").length;
    var count = document.querySelector("[data-matrix-count]");
    var plural = document.querySelector("[data-matrix-plural]");
    if (count) { count.textContent = String(changed); }
    if (plural) { plural.textContent = changed === 1 ? "" : "s"; }
  }

  function markRow(select) {
    var row = select.closest("[data-matrix-row]");
    if (row) { row.classList.toggle("is-changed", select.value !== select.getAttribute("data-saved")); }
  }

  function setupMatrix(form) {
    form.addEventListener("change", function (event) {
      if (event.target.matches("select[data-saved]")) {
        markRow(event.target);
        refreshCount(form);
      }
    });
    form.querySelectorAll("[data-set-category]").forEach(function (button) {
      button.addEventListener("click", function (event) {
        event.preventDefault();
        var category = button.getAttribute("data-set-category");
        var section = form.querySelector('[data-matrix-category="' + category + '"]');
        var level = form.querySelector("#category-" + category).value;
        rowsOf(section).forEach(function (row) {
          if (row.hidden) { return; }
          var select = row.querySelector("select[data-saved]");
          if (select && select.querySelector('option[value="' + level + '"]')) {
            select.value = level;
            markRow(select);
          }
        });
        refreshCount(form);
      });
    });
    window.addEventListener("beforeunload", function (event) {
      if (form.querySelector(".matrix__row.is-changed") && !form.dataset.submitting) {
        event.preventDefault();
      }
    });
    form.addEventListener("submit", function () { form.dataset.submitting = "1"; });
  }

  function setupFilter(filterForm) {
    var input = filterForm.querySelector("input[type=search]");
    var nomatch = document.querySelector("[data-matrix-nomatch]");
    function apply() {
      var text = input.value.trim().toLowerCase();
      var any = false;
      document.querySelectorAll("[data-matrix-category]").forEach(function (section) {
        var visible = 0;
        rowsOf(section).forEach(function (row) {
          var show = !text || row.getAttribute("data-search").indexOf(text) !== -1;
          row.hidden = !show;
          if (show) { visible += 1; }
        });
        section.hidden = visible === 0;
        any = any || visible > 0;
      });
      if (nomatch) { nomatch.hidden = any; }
    }
    input.addEventListener("input", apply);
    filterForm.addEventListener("submit", function (event) { event.preventDefault(); apply(); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.querySelector("[data-matrix]");
    if (form) { setupMatrix(form); }
    var filter = document.querySelector("[data-matrix-filter]");
    if (filter) { setupFilter(filter); }
  });
})();
