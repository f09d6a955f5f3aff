// Billing Access: small progressive enhancements; every page works without this file.
(function () {
  "use strict";
  // Collapse the menu by default on small screens.
  document.addEventListener("DOMContentLoaded", function () {
    var toggle = document.querySelector(".sidebar__toggle");
    if (toggle && window.matchMedia("(max-width: 760px)").matches) {
      toggle.removeAttribute("open");
    }
  });
})();
