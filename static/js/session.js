// Idle-timeout warning: shortly before a signed-in session would end for inactivity, offer to stay
// signed in. Reads data-idle-remaining (seconds), data-idle-warning (seconds), data-keep-alive-url
// and data-sign-in-url from <body>; without this file the server still ends the session.
(function () {
  "use strict";
  var body = document.body;
  var remaining = parseInt(body.getAttribute("data-idle-remaining") || "", 10);
  if (!remaining || remaining <= 0) { return; }
  var warning = parseInt(body.getAttribute("data-idle-warning") || "120", 10);
  var keepAliveUrl = body.getAttribute("data-keep-alive-url");
  var signInUrl = body.getAttribute("data-sign-in-url");
  var deadline, warnTimer, endTimer, tickTimer, banner;

  function secondsLeft() { return Math.max(0, Math.round((deadline - Date.now()) / 1000)); }

  function describe(seconds) {
    if (seconds >= 120) { return Math.round(seconds / 60) + " minutes"; }
    if (seconds >= 60) { return "1 minute"; }
    return seconds + " seconds";
  }

  function hideBanner() {
    if (banner) { banner.hidden = true; }
    window.clearInterval(tickTimer);
  }

  function showBanner() {
    if (!banner) {
      banner = document.createElement("div");
      banner.className = "session-warning";
      banner.setAttribute("role", "alertdialog");
      banner.setAttribute("aria-live", "assertive");
      banner.setAttribute("aria-labelledby", "session-warning-text");
      var text = document.createElement("p");
      text.id = "session-warning-text";
      var button = document.createElement("button");
      button.type = "button";
      button.className = "button button--primary";
      button.textContent = "Stay signed in";
      button.addEventListener("click", stayActive);
      banner.appendChild(text);
      banner.appendChild(button);
      document.body.appendChild(banner);
    }
    var label = banner.querySelector("p");
    var render = function () {
      label.textContent = "You will be signed out in " + describe(secondsLeft()) +
        " because of inactivity.";
    };
    render();
    banner.hidden = false;
    window.clearInterval(tickTimer);
    tickTimer = window.setInterval(render, 1000);
    banner.querySelector("button").focus();
  }

  function schedule(seconds) {
    deadline = Date.now() + seconds * 1000;
    window.clearTimeout(warnTimer);
    window.clearTimeout(endTimer);
    warnTimer = window.setTimeout(showBanner, Math.max(0, seconds - warning) * 1000);
    endTimer = window.setTimeout(function () {
      // Ask for this page again: the server ends the idle session and sends the person to the
      // sign-in page with this page as `next`, so they come back to where they were.
      window.location.assign(window.location.pathname + window.location.search || signInUrl || "/");
    }, seconds * 1000 + 1000);
  }

  function stayActive() {
    fetch(keepAliveUrl, { credentials: "same-origin", cache: "no-store" }).then(function (response) {
      if (response.redirected || !response.ok) { window.location.reload(); return; }
      hideBanner();
      schedule(parseInt(body.getAttribute("data-idle-timeout") || String(remaining), 10));
    });
  }

  schedule(remaining);
})();
