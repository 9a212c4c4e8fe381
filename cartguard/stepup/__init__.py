"""Step-up authentication: sensitive-intent policy, TOTP enrolment and verification, sessions."""
