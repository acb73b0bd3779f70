"""Everything that knows about Slack: the Bolt app, listeners, parsing and Block Kit rendering."""
