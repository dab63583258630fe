"""The `devcopilot` command: the commands of copilot/cli.py, and `serve` from ui/server.py.

The entry point sits above every layer (ingest → indexes → copilot → ui → here), so the CLI in
copilot/ never imports ui/. Gradio is loaded only when `serve` runs.
"""
from __future__ import annotations

import argparse
import os

from copilot.cli import Command, config_from
from copilot.cli import main as cli_main


def _workers(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number of 1 or more")
    return int(text)


def serve_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--host", help="interface to bind (default 127.0.0.1, loopback only; server.host)")
    s.add_argument("--port", type=int, help="port (default 7860; server.port)")
    s.add_argument("--auth", metavar="USER:PASSWORD", action="append",
                   help="password for the web UI; repeat for more users, each with their own conversations "
                        "(env DEVCOPILOT_AUTH)")
    s.add_argument("--api-token", metavar="TOKEN", help="bearer token for /v1 (env DEVCOPILOT_API_TOKEN)")
    s.add_argument("--workers", type=_workers, metavar="N",
                   help="server processes behind the port (default: server.workers, 0 = one per CPU core)")


def run_serve(args: argparse.Namespace) -> int:
    from ui.server import serve

    cfg = config_from(args)
    workers = args.workers or cfg.server.workers or os.cpu_count() or 1
    serve(cfg, host=args.host or cfg.server.host, port=args.port or cfg.server.port,
          auth=args.auth or cfg.server.auth, api_token=args.api_token or cfg.server.api_token, workers=workers)
    return 0


COMMANDS = {"serve": Command("the web chat and the OpenAI-compatible API on one server", serve_arguments, run_serve)}


def main(argv: list[str] | None = None) -> int:
    return cli_main(argv, COMMANDS)


if __name__ == "__main__":
    raise SystemExit(main())
