"""Two-factor sign-in: TOTP devices and backup codes (models), the sign-in step and enrolment
(services), their forms, screens and urls, and the middleware that asks for enrolment."""
