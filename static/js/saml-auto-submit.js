// Single sign-on: send the signed request to the identity provider without a click.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var form = document.querySelector("form[data-auto-submit]");
    if (form) {
      form.submit();
    }
  });
})();
