"""One handler per flow, each with only the collaborators it uses: ``EventActions`` (Rerun and
Resume on an event, from wherever they are asked), ``ExecutionControls``, ``ApprovalForms``,
``DigestRows`` and ``HomeTab``. The listeners (``bot.slack.listeners``) start their work through
the ``InteractionContext`` and hand over to them; they read through the core, never the store or
the Code Stream client."""
