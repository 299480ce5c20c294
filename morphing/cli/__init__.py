"""Command line: ``morph -s SOURCE -t TARGET [options]``, ``morph --batch rows.csv`` and the sibling tools
``morph hybrid|shift|align|warp ...``.

Flags and messages only; the work is the library's. Modules: ``common`` (exit
codes, errors, signals, value and output checks, progress), ``morph`` (the
morph command), ``batch`` (its batch mode), ``tools`` (the registry of sibling
tools) and one module per tool. Nothing here imports TensorFlow until a
command has checked its flags and files.

Exit status: 0 success, 1 runtime error, 2 usage error, 130 interrupted
(Ctrl-C), 143 terminated (SIGTERM, or SIGHUP: a closed terminal).
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import TextIO

from morphing.runtime.backend import tensorflow_started
from morphing.runtime.compile_cache import CompileCache
from .batch import run_batch
from .common import (PROGRAM, Console, ExitStatus, RunError, StageTimer, StopRequest, Terminated, UsageError,
    describe_os_error, describe_unexpected)
from .morph import build_parser, run_morph, validate
from .tools import TOOL_NAMES, build_tool_parser

__all__ = ["ExitStatus", "build_parser", "console_main", "main"]


def _run_command(args: argparse.Namespace, arguments: list[str], console: Console, timer: StageTimer) -> int:
    """The command that ``args`` names: a tool, a batch, or one morph."""
    if getattr(args, "tool", None) is not None:
        args.run(args, console)
        return ExitStatus.OK
    if args.batch is not None:
        return run_batch(args, console, timer)
    for flag, given in (("--shard", args.shard is not None), ("--overwrite", args.overwrite)):
        if given:
            raise UsageError(f"{flag} works only with --batch")
    missing = [flag for flag, value in (("-s/--source", args.source), ("-t/--target", args.target)) if value is None]
    if missing:
        raise UsageError(f"the following arguments are required: {', '.join(missing)} (or --batch)")
    with timer.stage("load"):
        job = validate(args)
    run_morph(args, job, console, timer, tensorflow_started=tensorflow_started())
    if args.timings:
        console.error(f"{PROGRAM}: {timer.summary()}")
    return ExitStatus.OK


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run the command line; returns the exit status."""
    # A closed standard stream (``>&-``, some cron and daemon setups) is None: what would go there goes nowhere.
    out = stdout if stdout is not None else sys.stdout or open(os.devnull, "w")  # noqa: SIM115 - the process's
    err = stderr if stderr is not None else sys.stderr or open(os.devnull, "w")  # noqa: SIM115
    debug = bool(os.environ.get("MORPH_DEBUG"))
    arguments = list(sys.argv[1:] if argv is None else argv)

    is_tool = bool(arguments) and arguments[0] in TOOL_NAMES
    try:
        args = (build_tool_parser() if is_tool else build_parser()).parse_args(arguments)
    except UsageError as error:
        print(f"{PROGRAM}: error: {error}", file=err)
        return ExitStatus.USAGE
    except SystemExit as exit_:  # --help and --version
        return int(exit_.code or 0)

    stop = StopRequest()
    # A closed terminal or a dropped ssh session (SIGHUP) ends a run as SIGTERM does.
    watched = (signal.SIGINT, signal.SIGTERM, *((signal.SIGHUP,) if hasattr(signal, "SIGHUP") else ()))
    previous = {number: signal.getsignal(number) for number in watched}
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread:
        for number in watched:
            signal.signal(number, stop.handle)
    console = Console(err=err, out=out, quiet=args.quiet, check=stop.check)
    # What XLA compiles is kept for the next run, published only if this one ends normally.
    compile_cache = CompileCache.open() if not tensorflow_started() else None
    completed = False
    try:
        status = _run_command(args, arguments, console, StageTimer())
        completed = True
        return status
    except UsageError as error:
        print(f"{PROGRAM}: error: {error}", file=err)
        return ExitStatus.USAGE
    except RunError as error:
        print(f"{PROGRAM}: error: {error}", file=err)
        return ExitStatus.ERROR
    except KeyboardInterrupt:
        print(f"{PROGRAM}: interrupted; no output written for the run in progress", file=err)
        return ExitStatus.INTERRUPTED
    except Terminated:
        print(f"{PROGRAM}: terminated; no output written for the run in progress", file=err)
        return ExitStatus.TERMINATED
    except MemoryError:
        print(f"{PROGRAM}: error: out of memory; try a smaller --size or fewer --frames", file=err)
        return ExitStatus.ERROR
    except BrokenPipeError:  # the reader of the results has gone (``| head -1``): the work is done, end quietly
        completed = True
        return ExitStatus.OK
    except OSError as error:
        if debug and error.errno != errno.ENOSPC:
            raise
        print(f"{PROGRAM}: error: {describe_os_error(error)}", file=err)
        return ExitStatus.ERROR
    except Exception as error:  # noqa: BLE001 - one line unless debugging
        if debug:
            raise
        line = describe_unexpected(error)
        hint = "" if line.startswith("the compile cache") else " (set MORPH_DEBUG=1 for a traceback)"
        print(f"{PROGRAM}: error: {line}{hint}", file=err)
        return ExitStatus.ERROR
    finally:
        if compile_cache is not None and completed:
            compile_cache.publish()
        elif compile_cache is not None:
            compile_cache.discard()
        if in_main_thread:
            for number, handler in previous.items():
                signal.signal(number, handler)
        _flush_quietly(out)


def _flush_quietly(stream: TextIO) -> None:
    """Flush ``stream``; a reader that has gone (a broken pipe: ``morph align … | head -1``) or a closed
    stream does not change a finished run's exit status, and nothing more is written to it."""
    try:
        stream.flush()
    except (BrokenPipeError, ValueError, OSError):
        if stream is sys.stdout:  # the interpreter flushes it again at exit: point it at nothing
            try:
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            except (OSError, ValueError):
                pass


def console_main() -> None:
    """Entry point of the installed ``morph`` command (and of ``morph.py``).

    Once TensorFlow is loaded, the process ends with ``os._exit`` after the
    output streams are flushed: tearing TensorFlow's modules down at
    interpreter exit takes over a second and does nothing a finished run
    needs (every output was already written and closed, atomically).
    """
    status = main()
    if not tensorflow_started():
        sys.exit(status)
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            _flush_quietly(stream)
    os._exit(status)
