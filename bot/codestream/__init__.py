"""The Code Stream API: models, auth, a typed client and its errors. No Slack in here.

Import from the modules (``bot.codestream.client``, ``.errors``, ``.models`` …): the package
itself imports nothing, so that reading a model does not load the HTTP stack.
"""
