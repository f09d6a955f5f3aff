"""Passkeys and security keys (WebAuthn): a second factor, passwordless sign-in and step-up.

Built on django-otp-webauthn: its credential model is a django-otp device (so a passkey stands
beside the authenticator app wherever devices are counted), and py_webauthn beneath it checks
every signature, origin, RP ID and sign counter. The portal's rules around the ceremonies are here:

- `ceremony`: the WebAuthn exchange itself (options out, one response back, checked once), and
  the exact reason of every refusal;
- `policy`: who must sign in with a passkey (the owner's phishing-resistant rule) and whether a
  passkey alone may sign a person in;
- `services`: registering, removing and revoking authenticators, the second step of sign-in,
  passwordless sign-in (the same gates as a password) and step-up, each audited;
- `views`, `urls`: JSON endpoints that `static/js/passkeys.js` calls, and the pages;
- `middleware`: a privileged person under the phishing-resistant rule adds a passkey first.
"""
