// Copy buttons: <button data-copy="ID"> copies the value of the field with that id to the
// clipboard and says so in the status element its aria-describedby names. The buttons stay
// hidden until this file runs; without it the field is selected and copied by hand.
(function () {
  "use strict";

  function copyByHand(field) {
    field.focus();
    field.select();
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
      function say(text) {
        if (status) {
          status.textContent = text;
        }
        button.textContent = "Copied";
        window.clearTimeout(timer);
        timer = window.setTimeout(function () {
          button.textContent = label;
        }, 2500);
      }
      button.hidden = false;
      button.addEventListener("click", function () {
        var fallback = function () {
          say(copyByHand(field) ? "Copied to the clipboard." : "Select the text and copy it.");
        };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(field.value).then(function () {
            say("Copied to the clipboard.");
          }, fallback);
        } else {
          fallback();
        }
      });
    });
  });
})();
