"""codestream-bot: resume and rerun VMware Code Stream git, Gerrit and Docker-registry events from Slack."""

__version__ = "0.1.0"
