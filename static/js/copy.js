// Copy buttons: <button data-copy="ID"> copies what the element with that id holds (an input's
// value, or the text of any other element, e.g. a list of backup codes, one per line) to the
// clipboard, shows "Copied" on the button for a moment and says so in the status element its
// aria-describedby names. The buttons stay hidden until this file runs. Without the Clipboard
// API (an http:// page, an old browser, a refused permission) the text is selected instead,
// and copied by the browser's own copy command when it still has one.
(function () {
  "use strict";

  function textOf(field) {
    if ("value" in field && typeof field.value === "string") {
      return field.value;
    }
    var codes = field.querySelectorAll("code");
    if (codes.length) {
      return Array.prototype.map.call(codes, function (code) {
        return code.textContent.trim();
      }).join("\n");
    }
    return field.textContent.trim();
  }

  function select(field) {
    if (typeof field.select === "function") {
      field.focus();
      field.select();
      return;
    }
    var selection = window.getSelection();
    var range = document.createRange();
    range.selectNodeContents(field);
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function copyByHand(field) {
    select(field);
    try {
      return document.execCommand("copy");
    } catch (error) {
      return false;
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      var field = document.getElementById(button.getAttribute("data-copy"));
      if (!field) {
        return;
      }
      var status = document.getElementById(button.getAttribute("aria-describedby") || "");
      var label = button.textContent;
      var timer = null;
      function say(copied) {
        if (status) {
          status.textContent = copied
            ? "Copied to the clipboard."
            : "Selected: press Ctrl+C (⌘C on a Mac) to copy it.";
        }
        button.textContent = copied ? "Copied" : "Selected";
        button.classList.toggle("is-copied", copied);
        window.clearTimeout(timer);
        timer = window.setTimeout(function () {
          button.textContent = label;
          button.classList.remove("is-copied");
        }, 2500);
      }
      button.hidden = false;
      button.addEventListener("click", function () {
        var fallback = function () {
          say(copyByHand(field));
        };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(textOf(field)).then(function () {
            say(true);
          }, fallback);
        } else {
          fallback();
        }
      });
    });
  });
})();
