"""What current guidance says about the policy options that owners may turn on for auditors.

Shown on the policy screen beside an option while it is on, after the label "Current guidance:",
so each note starts with the advice itself. Sources: NIST SP 800-63B (revision 4, password
verifiers) and OWASP ASVS 4.0.3 (V2.1, password security).
"""

COMPOSITION = (
    "Composition rules are advised against. NIST SP 800-63B says verifiers shall "
    "not impose them, and OWASP ASVS (V2.1.9) asks for no rules limiting the kinds of characters. "
    "They make passwords harder to remember and push people to predictable patterns such as "
    "\u201cSummer2025!\u201d without making them stronger; length does that."
)
ALLOWED_CHARACTERS = (
    "Every character should be accepted. OWASP ASVS (V2.1.4) asks that any "
    "printable Unicode character, spaces and emoji included, be accepted, and NIST SP 800-63B "
    "asks for all printing ASCII characters, the space and Unicode. A shorter list of symbols "
    "shrinks the number of possible passwords."
)
EXPIRY = (
    "Scheduled expiry is advised against. NIST SP 800-63B says passwords shall not "
    "be changed periodically, only on evidence of compromise, and OWASP ASVS (V2.1.10) asks for no "
    "periodic rotation. Forced changes lead to small, guessable variations of the old password."
)
HISTORY = (
    "No password history is asked for: OWASP ASVS (V2.1.10) asks for no "
    "history requirements. Without expiry it rarely matters; with expiry it mostly stops the "
    "most obvious reuse."
)
SHORT_MINIMUM = (
    "Below 15 characters only because two-factor authentication is required: NIST SP 800-63B "
    "accepts 8 when a password is one of two factors, and 15 when it is the only one."
)

# Policy field -> the note shown while that option is on.
BY_FIELD = {
    "require_upper": COMPOSITION,
    "require_lower": COMPOSITION,
    "require_digit": COMPOSITION,
    "require_symbol": COMPOSITION,
    "allowed_characters": ALLOWED_CHARACTERS,
    "expiry_days": EXPIRY,
    "history_depth": HISTORY,
}
