// Passkeys (WebAuthn): add one, sign in with one (the browser's autofill in the username field,
// or a button), use one as the second step or to confirm it is you.
//
// Each element with data-passkey="register | sign-in | second-step | step-up" names two URLs:
// data-begin-url answers the options for navigator.credentials (binary fields in base64url),
// data-complete-url checks the browser's answer and replies {"redirect": url} or, refused,
// {"error": message}. The server (accounts/passkeys) decides everything; this only carries.
(function () {
  "use strict";
  if (window.billingAccessPasskeys) { return; }  // the script may be included twice on a page
  window.billingAccessPasskeys = true;

  var FAILED = "The passkey request did not work. Try again.";

  function toBuffer(text) {
    var base64 = String(text).replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) { base64 += "="; }
    var binary = window.atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) { bytes[i] = binary.charCodeAt(i); }
    return bytes.buffer;
  }

  function toText(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) { binary += String.fromCharCode(bytes[i]); }
    return window.btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (item) {
      return Object.assign({}, item, { id: toBuffer(item.id) });
    });
  }

  function creationOptions(json) {
    return Object.assign({}, json, {
      challenge: toBuffer(json.challenge),
      user: Object.assign({}, json.user, { id: toBuffer(json.user.id) }),
      excludeCredentials: descriptors(json.excludeCredentials)
    });
  }

  function requestOptions(json) {
    var options = Object.assign({}, json, { challenge: toBuffer(json.challenge) });
    if (json.allowCredentials) { options.allowCredentials = descriptors(json.allowCredentials); }
    return options;
  }

  function credentialJSON(credential) {
    var response = credential.response;
    var json = {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: credential.getClientExtensionResults ?
        credential.getClientExtensionResults() : {},
      response: { clientDataJSON: toText(response.clientDataJSON) }
    };
    if (response.attestationObject) {
      json.response.attestationObject = toText(response.attestationObject);
      json.response.transports = response.getTransports ? response.getTransports() : [];
    } else {
      json.response.authenticatorData = toText(response.authenticatorData);
      json.response.signature = toText(response.signature);
      json.response.userHandle = response.userHandle ? toText(response.userHandle) : null;
    }
    return json;
  }

  function csrfToken(root) {
    var input = root.querySelector("input[name=csrfmiddlewaretoken]") ||
      document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function post(root, url, body, signal) {
    return window.fetch(url, {
      method: "POST",
      credentials: "same-origin",
      signal: signal || null,
      headers: {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "X-CSRFToken": csrfToken(root)
      },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) {
          var error = new Error(data.error || FAILED);
          error.redirect = data.redirect || "";
          error.fromServer = true;
          throw error;
        }
        return data;
      });
    });
  }

  function showError(root, message) {
    var box = root.querySelector("[data-passkey-error]");
    if (!box) { return; }
    box.textContent = message || "";
    box.hidden = !message;
  }

  function explain(error) {
    switch (error && error.name) {
      case "NotAllowedError":
        return "The passkey request was cancelled or timed out. Try again.";
      case "InvalidStateError":
        return "This authenticator already holds a passkey for your account.";
      case "SecurityError":
        return "Passkeys do not work at this address. Open the portal at its usual address.";
      default:
        return (error && error.message) || FAILED;
    }
  }

  function fail(root, error) {
    if (error && error.redirect) {
      window.location.assign(error.redirect);
      return;
    }
    showError(root, explain(error));
  }

  function go(data) { window.location.assign(data.redirect); }

  // The options request is never cut short: its answer may carry the session cookie, which
  // must not arrive after the page has moved on (see signIn).
  function authenticate(root, body, mediation, signal, onBegun) {
    var begun = post(root, root.dataset.beginUrl, body);
    if (onBegun) { onBegun(begun); }
    return begun.then(function (options) {
      if (signal && signal.aborted) {
        throw new DOMException("Aborted", "AbortError");
      }
      var request = { publicKey: requestOptions(options) };
      if (mediation) { request.mediation = mediation; }
      if (signal) { request.signal = signal; }
      return navigator.credentials.get(request);
    }).then(function (credential) {
      var answer = Object.assign({}, body, { credential: credentialJSON(credential) });
      return post(root, root.dataset.completeUrl, answer, signal);
    });
  }

  function onStart(root, run) {
    var button = root.querySelector("[data-passkey-start]");
    if (!button) { return; }
    button.addEventListener("click", function (event) {
      event.preventDefault();
      if (button.disabled) { return; }
      button.disabled = true;
      showError(root, "");
      run().then(go).catch(function (error) {
        button.disabled = false;
        fail(root, error);
      });
    });
  }

  function register(root) {
    onStart(root, function () {
      var field = root.querySelector("input[name=name]");
      return post(root, root.dataset.beginUrl, {}).then(function (options) {
        return navigator.credentials.create({ publicKey: creationOptions(options) });
      }).then(function (credential) {
        return post(root, root.dataset.completeUrl, {
          name: field ? field.value : "",
          credential: credentialJSON(credential)
        });
      });
    });
    root.addEventListener("submit", function (event) { event.preventDefault(); });
  }

  function signIn(root) {
    var body = { purpose: root.dataset.purpose };
    var pending = null;
    var stopped = false;
    var begun = null;  // the autofill's options request, while it is under way
    root.hidden = false;

    function stopOffering() {
      stopped = true;
      if (pending) { pending.abort(); pending = null; }
      root.dataset.offer = "ended";
    }

    function track(request) {
      begun = request;
      request.catch(function () {}).then(function () { begun = null; });
    }

    // Autofill: the browser lists the person's passkeys under the username field and the
    // request waits until one is picked. Once answered (or refused) it is not offered again
    // on this page: the button remains.
    function offerInField() {
      if (!window.PublicKeyCredential.isConditionalMediationAvailable) {
        root.dataset.offer = "unavailable";
        return;
      }
      window.PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
        if (!available) { root.dataset.offer = "unavailable"; }
        if (!available || stopped) { return; }
        pending = new AbortController();
        root.dataset.offer = "waiting";
        authenticate(root, body, "conditional", pending.signal, track).then(go).catch(
          function (error) {
            pending = null;
            root.dataset.offer = "ended";
            // The browser ending an offer nobody took up is no news; the portal refusing the
            // passkey the person picked is.
            if (error && error.fromServer) { fail(root, error); }
          }
        );
      });
    }

    onStart(root, function () {
      stopOffering();
      return authenticate(root, body);
    });
    // Signing in with the password ends the offer. A form sent while the offer's options are
    // still on their way waits for them: their answer may set the session cookie, and arriving
    // after the sign-in's own answer it would replace the new session's.
    document.querySelectorAll("form").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        stopOffering();
        if (!begun) { return; }
        event.preventDefault();
        begun.catch(function () {}).then(function () { form.submit(); });
      });
    });
    offerInField();
  }

  function once(root) {
    onStart(root, function () {
      return authenticate(root, root.dataset.purpose ? { purpose: root.dataset.purpose } : {});
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var supported = Boolean(window.PublicKeyCredential && navigator.credentials);
    document.querySelectorAll("[data-passkey]").forEach(function (root) {
      if (!supported) {
        var note = root.querySelector("[data-passkey-unsupported]");
        if (note) { note.hidden = false; }
        var button = root.querySelector("[data-passkey-start]");
        if (button) { button.disabled = true; }
        return;
      }
      var mode = root.getAttribute("data-passkey");
      if (mode === "register") { register(root); }
      else if (mode === "sign-in") { signIn(root); }
      else { once(root); }
    });
  });
})();
