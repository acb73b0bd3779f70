"""The Slack app manifest: Socket Mode by default, or HTTP mode with request URLs filled in.

``manifest.yml`` at the top of the repository is exactly ``codestream-bot manifest`` (a test
keeps them equal), so the app a workspace admin creates matches what the code listens to.
"""

from __future__ import annotations

from typing import Any, Final

import yaml

from bot.slack.commands import COMMANDS
from bot.slack.listeners.commands import COMMAND
from bot.slack.listeners.events import MANIFEST_BOT_EVENTS
from bot.slack.listeners.home import MANIFEST_HOME_EVENTS

BOT_SCOPES: Final = (
    "app_mentions:read",
    "channels:history",
    "channels:read",  # conversations.list: channel names in settings (BOT_ALERT_CHANNEL=#ci-alerts)
    "chat:write",
    "commands",
    "groups:history",
    "groups:read",  # ... private channels too
    "usergroups:read",
    "users:read",
    "users:read.email",  # approvals: a person's e-mail, matched with the approval's approvers
)


#: The workflow step "Run a Code Stream pipeline" (a custom step: ``bot.slack.listeners.runs``).
#: Slack sends ``function_executed`` when a workflow reaches it; ``user`` is filled in by
#: Workflow Builder with the person who ran the workflow (the access policy applies to them).
FUNCTIONS: Final[dict[str, Any]] = {
    "run_pipeline": {
        "title": "Run a Code Stream pipeline",
        "description": "Start a Code Stream pipeline with inputs, as the person running the workflow",
        "input_parameters": {
            "properties": {
                "pipeline": {
                    "type": "string",
                    "title": "Pipeline",
                    "description": "Its name, id or Code Stream link",
                },
                "project": {
                    "type": "string",
                    "title": "Project",
                    "description": "The pipeline's project, when two projects have one of that name (optional)",
                },
                "inputs": {
                    "type": "string",
                    "title": "Inputs",
                    "description": "One name=value per line (optional)",
                },
                "wait": {
                    "type": "boolean",
                    "title": "Wait for the execution to end",
                    "description": "Finish the step when the execution ends, not as soon as it started",
                },
                "user": {"type": "slack#/types/user_context", "title": "Invoked by"},
            },
            "required": ["pipeline", "user"],
        },
        "output_parameters": {
            "properties": {
                "execution_id": {"type": "string", "title": "Execution id"},
                "execution_url": {"type": "string", "title": "Execution link"},
                "status": {"type": "string", "title": "Status (STARTED, or the final one when waiting)"},
            },
            "required": ["execution_id", "execution_url", "status"],
        },
    }
}
FUNCTION_EVENTS: Final = ("function_executed",)


# Only with BOT_MENTION_AUTHOR: users.lookupByEmail finds the Slack user of a commit's author.
MENTION_AUTHOR_SCOPES: Final = ("users:read.email",)


def manifest(http_base_url: str | None = None, *, mention_author: bool = False) -> dict[str, Any]:
    events_url = f"{http_base_url.rstrip('/')}/slack/events" if http_base_url else None
    command: dict[str, Any] = {
        "command": COMMAND,
        "description": "Rerun or resume failed Code Stream git, Gerrit and Docker events",
        "usage_hint": COMMANDS.hint,
        # Slack turns @user into <@U…> and links into <url> before we see the text: the audit
        # filter needs user ids, and the parser reads both forms.
        "should_escape": True,
    }
    event_subscriptions: dict[str, Any] = {
        "bot_events": [*MANIFEST_BOT_EVENTS, *MANIFEST_HOME_EVENTS, *FUNCTION_EVENTS]
    }
    interactivity: dict[str, Any] = {"is_enabled": True}
    if events_url:
        command["url"] = events_url
        event_subscriptions = {"request_url": events_url, **event_subscriptions}
        interactivity["request_url"] = events_url
    return {
        "_metadata": {"major_version": 2},
        "display_information": {
            "name": "Code Stream",
            "description": "Rerun and resume failed VMware Code Stream pipelines from Slack.",
            "background_color": "#1d428a",
        },
        "features": {
            # The Home tab: what is failing, what you did, the bot's health (views.publish).
            "app_home": {
                "home_tab_enabled": True,
                "messages_tab_enabled": False,
                "messages_tab_read_only_enabled": False,
            },
            "bot_user": {"display_name": "codestream-bot", "always_online": True},
            "slash_commands": [command],
        },
        "functions": FUNCTIONS,
        "oauth_config": {
            "scopes": {"bot": list(dict.fromkeys([*BOT_SCOPES, *(MENTION_AUTHOR_SCOPES if mention_author else ())]))}
        },
        "settings": {
            "event_subscriptions": event_subscriptions,
            "interactivity": interactivity,
            "org_deploy_enabled": True,  # custom workflow steps need an org-ready app
            "function_runtime": "remote",
            "socket_mode_enabled": events_url is None,
            "token_rotation_enabled": False,
        },
    }


def manifest_yaml(http_base_url: str | None = None, *, mention_author: bool = False) -> str:
    header = (
        "# Slack app manifest for codestream-bot (Socket Mode).\n"
        "# Generated by `codestream-bot manifest`; for HTTP mode run\n"
        "# `codestream-bot manifest --http https://bot.example.com`.\n"
        if http_base_url is None
        else f"# Slack app manifest for codestream-bot (HTTP mode at {http_base_url}).\n"
    )
    manifest_data = manifest(http_base_url, mention_author=mention_author)
    return header + yaml.safe_dump(manifest_data, sort_keys=False, allow_unicode=True)
