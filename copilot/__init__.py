"""devcopilot: a developer copilot for a framework's docs and code."""
