"""``morph ui``: the local web page (``morphing.ui``), served on 127.0.0.1 until Ctrl-C."""

from __future__ import annotations

import argparse
import ipaddress
import socket
import time
from pathlib import Path

from .common import PROGRAM, Console, RunError, UsageError, int_in

NAME = "ui"
SUMMARY = "a local web page: upload, click point pairs, fit, tune and download"
DESCRIPTION = (
    "Serve the morph's web page on this machine (nothing is fetched from outside; no telemetry). "
    "Open the printed address in a browser; Ctrl-C stops it."
)
DEFAULT_OUTPUT = None
SAMPLES = Path(__file__).resolve().parent.parent.parent / "images"


def add_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of this tool (the registry adds --cpu and -q)."""
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on; anything but a loopback address lets other machines in")
    parser.add_argument("--port", type=int_in(1, 65535), default=None, help="port [default: a free one]")


def free_port(host: str) -> int:
    """A port nobody listens on at ``host`` now."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def run(args: argparse.Namespace, console: Console) -> None:
    """Check the flags, start TensorFlow, serve the page until interrupted."""
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise RunError('the web page needs Gradio: pip install ".[ui]" (or pip install -r requirements-ui.txt)'
                       ) from None
    if not is_loopback(args.host):
        console.error(f"{PROGRAM} ui: warning: --host {args.host} is not a loopback address: other machines can "
                      "reach the page")
    try:
        port = args.port if args.port is not None else free_port(args.host)
    except OSError as error:
        raise UsageError(f"--host {args.host}: cannot listen there ({error.strerror or error})") from None
    from .common import start_tool
    from ..ui import PageError, serve

    start_tool(args, console)
    try:
        page = serve(args.host, port, SAMPLES if SAMPLES.is_dir() else None, block=False)
    except PageError as error:
        raise RunError(str(error)) from None
    except OSError as error:
        raise RunError(f"cannot serve on {args.host}:{port} ({error.strerror or error})") from None
    print(f"{PROGRAM} ui: serving on {page.local_url} (Ctrl-C stops it)", file=console.out, flush=True)
    try:
        while True:  # Ctrl-C and SIGTERM are acted on here (console.check raises)
            console.check()
            time.sleep(0.2)
    finally:
        page.close()
        page.morph_folders.remove_all()
