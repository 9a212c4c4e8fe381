"""The shop's staff: accounts (argon2 passwords, TOTP), roles with least privilege, and sessions.

Staff are not shoppers: nothing here touches customer data. ``roles`` is the one table of what
each role may do; the CLI checks every command against it.
"""
