"""The shared word parser: what people type on every surface."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.commands import Invocation as ParsedCommand
from bot.core.errors import UsageError
from bot.slack.commands import parse_command
from bot.slack.parse import parse_thread_reply, strip_mention

ID = "8365ef3b-8bf3-48aa-bd5d-7113fcff827c"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"rerun {ID}", ParsedCommand("rerun", "git", ID)),
        (f"RERUN {ID.upper()}", ParsedCommand("rerun", "git", ID)),
        (f"resume gerrit {ID}", ParsedCommand("resume", "gerrit", ID)),
        (f"rerun docker {ID}", ParsedCommand("rerun", "docker", ID)),
        (f"show {ID}", ParsedCommand("show", "git", ID)),
        (f"rerun https://vra.example.com/codestream/api/gerrit-events/{ID}", ParsedCommand("rerun", "gerrit", ID)),
        (
            f"rerun <https://vra.example.com/codestream/api/registry-events/{ID}?apiVersion=x|link>",
            ParsedCommand("rerun", "docker", ID),
        ),
        (f"rerun https://vra.example.com/codestream/#/triggers/git-events/{ID}", ParsedCommand("rerun", "git", ID)),
        (f"rerun <https://vra.example.com/codestream/#/activity/{ID}>", ParsedCommand("rerun", "git", ID)),
        ("list", ParsedCommand("list")),
        ("failed gerrit", ParsedCommand("list", "gerrit")),
        ("", ParsedCommand("help")),
        ("help", ParsedCommand("help")),
        ("audit @alice --since 7d", ParsedCommand("audit", args=("@alice", "--since", "7d"))),
    ],
)
def test_valid_commands(text: str, expected: ParsedCommand) -> None:
    assert parse_command(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("deploy prod", "Unknown command `deploy`"),
        ("rerun", "needs an event id"),
        ("rerun gerrit", "needs an event id"),
        ("rerun 1234", "is not a Code Stream event id"),
        ("rerun ../../iaas/api/x", "is not a Code Stream event id"),
        ("rerun %2e%2e", "is not a Code Stream event id"),
        (f"rerun {ID} {ID}", "takes one event id"),
        (f"rerun https://vra/codestream/#/executions/{ID}", "pipeline execution"),
        (f"rerun gerrit https://vra/codestream/api/git-events/{ID}", "not a gerrit event"),
        ("list everything now", "takes at most an event kind"),
        ("rerun " + "x" * 3000, "too long"),
    ],
)
def test_malformed_commands_raise_usage_errors(text: str, says: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_command(text)
    assert says in caught.value.user_message


@pytest.mark.parametrize(
    ("text", "verb"),
    [
        ("rerun", "rerun"),
        ("  Rerun  ", "rerun"),
        ("RESUME", "resume"),
        ("status", "show"),
        ("<@U0BOT> rerun", "rerun"),
        ("<@U0BOT|codestream-bot>: rerun!", "rerun"),
        ("<@U0BOB> rerun", None),  # Carol asking Bob: not a request to the bot
        ("<@U0BOB|bob>: rerun!", None),
        ("rerun please", None),
        ("should we rerun?", None),
        ("lgtm", None),
        ("", None),
    ],
)
def test_thread_replies(text: str, verb: str | None) -> None:
    assert parse_thread_reply(text, "U0BOT") == verb


def test_a_thread_reply_is_not_read_when_the_bot_does_not_know_its_own_id() -> None:
    assert parse_thread_reply("<@U0BOT> rerun", None) is None
    assert parse_thread_reply("rerun", None) == "rerun"


def test_strip_mention_only_strips_a_leading_mention() -> None:
    assert strip_mention(f"<@U0BOT> rerun {ID}") == f"rerun {ID}"
    assert strip_mention("hello <@U0BOT>") == "hello <@U0BOT>"
    assert strip_mention(f"<@U0BOT> rerun {ID}", "U0BOT") == f"rerun {ID}"
    assert strip_mention(f"<@U0BOB> rerun {ID}", "U0BOT") == f"<@U0BOB> rerun {ID}"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_parses_or_raises_usage_error(text: str) -> None:
    try:
        parsed = parse_command(text)
    except UsageError as exc:
        assert exc.user_message
        return
    if parsed.event_id is not None:
        assert len(parsed.event_id) == 36
