"""Built-in recognizers, one module per label; importing this package registers them all."""

from cartguard.pii.recognizers import (  # noqa: F401 - imported for registration
    address,
    card,
    cvv,
    email,
    iban,
    ip,
    otp,
    password,
    person,
    phone,
    secure_link,
    ssn,
)
