"""The follow-through: after a resume/rerun, follow the new execution to its end and keep the
summary (and, at the end, the original alert) up to date. See ``tracker`` for how."""

from bot.core.followup.leadership import LEASE_NAME
from bot.core.followup.stats import FollowupStats
from bot.core.followup.timing import FollowupTiming, PollBudget
from bot.core.followup.tracker import FollowupTracker

__all__ = ["LEASE_NAME", "FollowupStats", "FollowupTiming", "FollowupTracker", "PollBudget"]
