"""Code Stream approvals (user operations) in Slack: the watcher posts the requests
(``watcher``), people decide (``decide``), through the ``ApprovalNotifier`` port (``ports``)."""
