"""The `devcopilot` command (ui/cli.py holds every subcommand)."""
from ui.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
