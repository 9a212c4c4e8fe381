"""Staff roles and the one permission table every staff command checks.

Least privilege: each role gets only what its job needs, and no permission anywhere lets a
person read vault plaintext (card numbers, codes, contact details behind tokens) - there is
simply no such permission to grant. Service credentials (for cron) hold a scope instead of a
role, and only the :data:`SERVICE_SCOPES`. ``docs/staff-roles.md`` carries the same tables; a
test fails when the two disagree, and another runs every command of the ``cartguard`` app
against them, so the documentation cannot drift from what the code enforces.
"""

from __future__ import annotations

from enum import Enum


class Role(str, Enum):
    ADMINISTRATOR = "Administrator"
    EDITOR = "Editor"
    MARKETER = "Marketer"
    MAILBOX_MODERATOR = "Mailbox moderator"
    VIEWER = "Viewer"

    @classmethod
    def parse(cls, text: str) -> Role:
        """Accept "administrator", "mailbox-moderator", "Mailbox moderator" and the like."""
        wanted = text.strip().lower().replace("-", " ").replace("_", " ")
        for role in cls:
            if role.value.lower() == wanted:
                return role
        names = ", ".join(r.value for r in cls)
        raise ValueError(f"unknown role {text!r}; choose one of: {names}")


class Permission(str, Enum):
    CUSTOMER_EXPORT = "customer.export"
    CUSTOMER_ERASE = "customer.erase"
    STAFF_MANAGE = "staff.manage"
    AUDIT_READ = "audit.read"
    AUDIT_VERIFY = "audit.verify"
    AUDIT_REANCHOR = "audit.reanchor"
    TICKETS_READ = "tickets.read"
    TICKETS_ANSWER = "tickets.answer"
    TRANSCRIPTS_READ_REDACTED = "transcripts.read_redacted"
    STATS_READ = "stats.read"
    STEPUP_READ = "stepup.read"
    STEPUP_MANAGE = "stepup.manage"
    SECURITY_READ = "security.read"
    SECURITY_RESPOND = "security.respond"
    SECURITY_SCAN = "security.scan"
    KEYS_ROTATE = "keys.rotate"
    RETENTION_PURGE = "retention.purge"
    OWN_PASSWORD = "account.own_password"  # noqa: S105 - a permission name, not a secret


#: What each permission lets a person do, in words (shown in refusals and in the docs).
DESCRIPTIONS: dict[Permission, str] = {
    Permission.CUSTOMER_EXPORT: "export a customer's data (privacy request)",
    Permission.CUSTOMER_ERASE: "erase a customer's data (privacy request)",
    Permission.STAFF_MANAGE: "create staff, change roles, disable and enable accounts",
    Permission.AUDIT_READ: "read the audit log",
    Permission.AUDIT_VERIFY: "verify the audit log's hash chain and head",
    Permission.AUDIT_REANCHOR: "re-anchor the audit log's head after a restore from backup",
    Permission.TICKETS_READ: "list and read support tickets (redacted transcripts)",
    Permission.TICKETS_ANSWER: "answer and close support tickets",
    Permission.TRANSCRIPTS_READ_REDACTED: "read redacted conversation transcripts",
    Permission.STATS_READ: "see aggregate, non-identifying statistics",
    Permission.STEPUP_READ: "see a customer's step-up state (never the secret)",
    Permission.STEPUP_MANAGE: "disable, unlock or reset a customer's step-up",
    Permission.SECURITY_READ: "list security events and active blocks",
    Permission.SECURITY_RESPOND: (
        "contain an incident: acknowledge events, block and unblock sources, "
        "revoke every session, switch maintenance mode"
    ),
    Permission.SECURITY_SCAN: "run the anomaly rules now",
    Permission.KEYS_ROTATE: "rotate the vault key (every sealed secret is re-sealed)",
    Permission.RETENTION_PURGE: "delete what retention says must go (transcripts, expired data)",
    Permission.OWN_PASSWORD: "change one's own password",
}

_A, _E, _M, _MM, _V = (
    Role.ADMINISTRATOR,
    Role.EDITOR,
    Role.MARKETER,
    Role.MAILBOX_MODERATOR,
    Role.VIEWER,
)

#: The permission table: permission -> roles allowed. Keep docs/staff-roles.md in step.
PERMISSIONS: dict[Permission, frozenset[Role]] = {
    Permission.CUSTOMER_EXPORT: frozenset({_A}),
    Permission.CUSTOMER_ERASE: frozenset({_A}),
    Permission.STAFF_MANAGE: frozenset({_A}),
    Permission.AUDIT_READ: frozenset({_A}),
    Permission.AUDIT_VERIFY: frozenset({_A}),
    Permission.AUDIT_REANCHOR: frozenset({_A}),
    Permission.TICKETS_READ: frozenset({_MM}),
    Permission.TICKETS_ANSWER: frozenset({_MM}),
    Permission.TRANSCRIPTS_READ_REDACTED: frozenset({_A, _E, _V}),
    Permission.STATS_READ: frozenset({_A, _E, _M}),
    Permission.STEPUP_READ: frozenset({_A}),
    Permission.STEPUP_MANAGE: frozenset({_A}),
    Permission.SECURITY_READ: frozenset({_A}),
    Permission.SECURITY_RESPOND: frozenset({_A}),
    Permission.SECURITY_SCAN: frozenset({_A}),
    Permission.KEYS_ROTATE: frozenset({_A}),
    Permission.RETENTION_PURGE: frozenset({_A}),
    Permission.OWN_PASSWORD: frozenset({_A, _E, _M, _MM, _V}),
}

#: What a service credential (``cartguard staff service-token create``) may be scoped to:
#: the scheduled jobs cron runs. Nothing that reads personal data or contains an incident.
SERVICE_SCOPES: frozenset[Permission] = frozenset(
    {Permission.AUDIT_VERIFY, Permission.SECURITY_SCAN, Permission.RETENTION_PURGE}
)


def is_allowed(role: Role | str, permission: Permission) -> bool:
    """True when ``role`` holds ``permission``; unknown roles hold nothing."""
    try:
        resolved = role if isinstance(role, Role) else Role(role)
    except ValueError:
        return False
    return resolved in PERMISSIONS.get(permission, frozenset())


def permissions_of(role: Role) -> list[Permission]:
    return [perm for perm, roles in PERMISSIONS.items() if role in roles]
