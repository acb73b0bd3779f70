"""Who may do what, where.

``perform`` asks the policy before anything reaches Code Stream, so one check guards every
surface (slash command, button, thread reply, mention). Rules come from the ``access:`` section
of the ``BOT_CONFIG`` file and, for simple cases, from ``BOT_ALLOWED_USERS``,
``BOT_ALLOWED_USERGROUPS`` and ``BOT_ALLOWED_CHANNELS``.

With no rules at all everyone may act (and start-up and ``check`` warn). With rules, anything
not allowed by some rule is denied — including when a user-group lookup fails (fail closed).
"""

from bot.core.access.grants import Grant, Grants
from bot.core.access.policy import (
    NO_POLICY_WARNING,
    AccessPolicy,
    AllowEveryone,
    GroupDirectory,
    GroupLookupFailed,
    RulePolicy,
    build_policy,
)
from bot.core.access.rules import (
    ALL_ACTIONS,
    ALL_VERBS,
    AccessConfig,
    Rule,
    Scope,
    Viewer,
    parse_access_config,
    split_ids,
)
from bot.core.access.workspace import WorkspaceGate

__all__ = [
    "ALL_ACTIONS",
    "ALL_VERBS",
    "NO_POLICY_WARNING",
    "AccessConfig",
    "AccessPolicy",
    "AllowEveryone",
    "Grant",
    "Grants",
    "GroupDirectory",
    "GroupLookupFailed",
    "Rule",
    "RulePolicy",
    "Scope",
    "Viewer",
    "WorkspaceGate",
    "build_policy",
    "parse_access_config",
    "split_ids",
]
