"""Account-takeover signals: the person hears of unusual sign-ins and of changes to their account.

`services.observe_sign_in` remembers the browser families and countries each person signs in
from and flags the first sign-in from one not seen before; `services.notify_change` tells the
person their password, email address or authenticators changed. Both email through the outbox,
each with a link to "Your sessions", and both are audited.
"""
