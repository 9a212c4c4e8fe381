"""Step-up authentication: the sensitive-intent policy, TOTP enrolment and verification, sessions."""
