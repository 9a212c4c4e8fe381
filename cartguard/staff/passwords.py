"""Password policy and hashing for staff accounts.

Length beats composition rules, so the policy asks for at least 12 characters and refuses the
passwords attackers try first (a short list written here, checked after stripping the digits
and symbols people tack on) and anything containing the username. Hashes are argon2id with
the library's current defaults; :func:`needs_rehash` lets a login upgrade old hashes.
"""

from __future__ import annotations

import re
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 12
MAX_LENGTH = 256  # hashing megabytes of "password" is a cheap denial of service

#: Bases of passwords that top every leaked-password list; compared case-insensitively.
COMMON_PASSWORDS = frozenset(
    {
        "123456789012",
        "1234567890",
        "qwertyuiop",
        "qwertyuiopasdf",
        "qwerty",
        "asdfghjkl",
        "zxcvbnm",
        "password",
        "passw0rd",
        "p@ssw0rd",
        "p@ssword",
        "letmein",
        "welcome",
        "iloveyou",
        "admin",
        "administrator",
        "changeme",
        "trustno1",
        "football",
        "baseball",
        "dragon",
        "monkey",
        "sunshine",
        "princess",
        "superman",
        "starwars",
        "master",
        "shadow",
        "secret",
        "whatever",
        "abc",
        "abcdef",
        "abcdefghijkl",
        "qazwsx",
        "1q2w3e4r5t6y",
        "1qaz2wsx3edc",
        "mypassword",
        "passwordpassword",
        "correcthorsebatterystaple",
        "cartguard",
        "cartguardadmin",
        "shop",
        "shopadmin",
        "support",
        "supportteam",
        "summer",
        "winter",
        "spring",
        "autumn",
        "default",
    }
)

_TRAILING_NOISE = re.compile(r"[\d\W_]+$")
_LEADING_NOISE = re.compile(r"^[\d\W_]+")


class PasswordPolicyError(ValueError):
    """The chosen password does not meet the policy; the message says why."""


def password_problems(password: str, username: str) -> list[str]:
    """Every reason ``password`` is refused, in words a staff member understands."""
    problems: list[str] = []
    if len(password) < MIN_LENGTH:
        problems.append(f"use at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        problems.append(f"use at most {MAX_LENGTH} characters")
    lowered = password.lower()
    core = _LEADING_NOISE.sub("", _TRAILING_NOISE.sub("", lowered))
    if lowered in COMMON_PASSWORDS or core in COMMON_PASSWORDS or core == "":
        problems.append("this password is too common; choose something less guessable")
    elif len(set(lowered)) <= 2:
        problems.append("use more than two different characters")
    name = username.strip().lower()
    if name and name in lowered:
        problems.append("the password must not contain the username")
    return problems


def check_password_policy(password: str, username: str) -> None:
    """Raise :class:`PasswordPolicyError` listing every problem, or return quietly."""
    problems = password_problems(password, username)
    if problems:
        raise PasswordPolicyError("password refused: " + "; ".join(problems))


_hasher = PasswordHasher()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """A hash verified against when the username is unknown, so that a wrong username costs
    the same time as a wrong password (no username probing by timing). Made on first use,
    not at import: every ``cartguard`` command would otherwise pay for one argon2 hash."""
    return _hasher.hash("not-a-real-account-\u2603-placeholder")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant-shape check: always runs one argon2 verification, never raises."""
    if len(password) > MAX_LENGTH:
        password = password[:MAX_LENGTH]
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and bool(password_hash)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
