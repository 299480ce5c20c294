"""What the commands share (``morphing.cli.common``): value checks, output checks, signals, messages."""

from __future__ import annotations

import argparse
import errno
import io
import signal
import threading
from pathlib import Path

import pytest

from morphing.cli.common import (
    Console,
    StageTimer,
    StopRequest,
    Terminated,
    UsageError,
    check_outputs,
    describe_os_error,
    float_in,
    int_in,
    new_default_output,
    run_checked,
)


class TestValueChecks:
    def test_int_in_takes_whole_numbers_in_range(self) -> None:
        parse = int_in(2, 5)
        assert parse("3") == 3
        for text, message in (("1", "between 2 and 5"), ("6", "between 2 and 5"), ("2.5", "whole number")):
            with pytest.raises(argparse.ArgumentTypeError, match=message):
                parse(text)

    def test_float_in_refuses_non_finite_and_an_open_low_end(self) -> None:
        parse = float_in(0.0, 10.0, low_open=True)
        assert parse("0.5") == 0.5
        for text in ("0", "nan", "inf", "11", "x"):
            with pytest.raises(argparse.ArgumentTypeError):
                parse(text)


class TestOutputs:
    def test_an_output_that_is_an_input_is_refused(self, tmp_path: Path) -> None:
        image = tmp_path / "a.png"
        image.write_bytes(b"x")
        with pytest.raises(UsageError, match="same file as --near"):
            check_outputs({"-o": image}, [("--near", image)], (".png",))

    def test_each_flag_gets_its_own_suffixes_and_two_outputs_cannot_share_a_file(self, tmp_path: Path) -> None:
        check_outputs({"-o": tmp_path / "a.gif", "--maps": tmp_path / "m.png"}, [],
                      {"-o": (".gif",), "--maps": (".png",)})
        with pytest.raises(UsageError, match="unknown file type '.png'; use .gif"):
            check_outputs({"-o": tmp_path / "a.png"}, [], {"-o": (".gif",)})
        with pytest.raises(UsageError, match="two outputs name the same file"):
            check_outputs({"-o": tmp_path / "a.png", "--x": tmp_path / "a.png"}, [], (".png",))

    def test_a_default_output_never_replaces_a_file(self, tmp_path: Path, monkeypatch) -> None:
        monkeypatch.chdir(tmp_path)
        assert new_default_output(None, "morph.gif") == Path("morph.gif")
        assert new_default_output(Path("x.gif"), "morph.gif") == Path("x.gif")
        (tmp_path / "morph.gif").write_bytes(b"mine")
        with pytest.raises(UsageError, match="morph.gif exists"):
            new_default_output(None, "morph.gif")
        assert new_default_output(Path("morph.gif"), "morph.gif") == Path("morph.gif")  # named: may replace

    def test_os_errors_are_one_line(self) -> None:
        assert describe_os_error(OSError(errno.ENOSPC, "No space", "o.gif")) == "no space left on the device writing o.gif"
        assert describe_os_error(OSError(errno.EACCES, "Permission denied", "o.gif")) == "Permission denied: o.gif"
        assert "MORPH_DEBUG" in describe_os_error(OSError("odd"))


class TestStopRequest:
    def test_a_signal_acts_at_once_before_the_first_check_and_at_the_next_check_after(self) -> None:
        previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
        try:
            early = StopRequest()
            with pytest.raises(Terminated):
                early.handle(signal.SIGTERM, None)
            late = StopRequest()
            late.check()  # from here on, signals wait for a check
            late.handle(signal.SIGINT, None)
            with pytest.raises(KeyboardInterrupt):
                late.check()
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)


class TestConsole:
    def test_quiet_keeps_errors_only(self) -> None:
        err = io.StringIO()
        console = Console(err=err, out=io.StringIO(), quiet=True)
        console.say("chatter")
        console.error("problem")
        with console.bar(3, "work", "step") as bar:
            bar.update(3)
        assert err.getvalue() == "problem\n"


def test_stage_timer_counts_time_spent_producing_items() -> None:
    timer = StageTimer()
    assert list(timer.timed("make", iter([1, 2, 3]))) == [1, 2, 3]
    with timer.stage("other"):
        pass
    assert set(timer.seconds) == {"make", "other"} and all(value >= 0 for value in timer.seconds.values())
    assert timer.summary().startswith("timings: make ") and "peak RSS" in timer.summary()


class TestRunChecked:
    def test_returns_the_result_and_raises_the_works_exception(self) -> None:
        assert run_checked(lambda: 6 * 7, lambda: None) == 42
        with pytest.raises(ZeroDivisionError):
            run_checked(lambda: 1 / 0, lambda: None)

    def test_a_stop_is_raised_while_the_work_still_runs(self) -> None:
        release = threading.Event()
        calls = []

        def check() -> None:
            calls.append(1)
            if len(calls) >= 2:
                raise KeyboardInterrupt

        try:
            with pytest.raises(KeyboardInterrupt):
                run_checked(lambda: release.wait(60), check, poll_seconds=0.01)
            assert not release.is_set() and len(calls) == 2  # the work was still waiting
        finally:
            release.set()
