"""The development SMTP catcher: `python -m webapp.mailcatcher --port 8025 --dir .devdata/mail`.

./run-app starts it on 127.0.0.1; the delivery worker sends to it as to any
mail server, and it keeps each message as an `.eml` file that the admin
area's "Dev mail" page lists. Nothing is ever relayed onwards.
"""
from __future__ import annotations

import argparse
import itertools
import signal
import sys
import threading
import time
from pathlib import Path

from aiosmtpd.controller import Controller

_seq = itertools.count(1)


class SaveToFolder:
    """aiosmtpd handler: write every accepted message to `folder` as `<time>-<n>.eml`."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server, session, envelope):
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{time.time_ns() % 10**9:09d}-{next(_seq)}.eml"
        partial = self.folder / (name + ".part")
        partial.write_bytes(envelope.original_content or envelope.content)
        partial.rename(self.folder / name)  # the page never sees half a message
        return "250 Message accepted for delivery"


def start(folder: Path, port: int, host: str = "127.0.0.1") -> Controller:
    controller = Controller(SaveToFolder(folder), hostname=host, port=port)
    controller.start()
    return controller


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m webapp.mailcatcher")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args(argv)
    controller = start(args.dir, args.port)
    print(f"SMTP catcher on 127.0.0.1:{args.port}, saving to {args.dir}", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stopped.wait()
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
