"""XLA's compiled programs kept between runs (``morphing.runtime.compile_cache``): safe to share, bounded, optional."""

from __future__ import annotations

import collections

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from morphing.runtime.compile_cache import (CACHE_ENV, XLA_FLAG, CompileCache, default_root, failure_hint, machine_fingerprint,
                                     prune)
from tests.conftest import ROOT


@pytest.fixture
def clean_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``TF_XLA_FLAGS`` during the test, and none left after it (``open`` sets it)."""
    monkeypatch.setenv("TF_XLA_FLAGS", "")
    monkeypatch.delenv("TF_XLA_FLAGS")


class TestRoot:
    def test_the_environment_names_or_turns_off_the_cache(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(CACHE_ENV, "off")  # restored after the test
        for off in ("off", "", "0"):
            monkeypatch.setenv(CACHE_ENV, off)
            assert default_root() is None
        monkeypatch.setenv(CACHE_ENV, "/somewhere")
        assert default_root() == Path("/somewhere")
        monkeypatch.delenv(CACHE_ENV)
        monkeypatch.setenv("XDG_CACHE_HOME", "/xdg")
        assert default_root() == Path("/xdg/morphing")

    def test_no_home_folder_turns_the_cache_off(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(CACHE_ENV, "off")
        monkeypatch.delenv(CACHE_ENV)
        monkeypatch.delenv("XDG_CACHE_HOME", raising=False)

        def no_home() -> Path:
            raise RuntimeError("Could not determine home directory.")

        monkeypatch.setattr(Path, "home", staticmethod(no_home))  # no HOME, no passwd entry
        assert default_root() is None

    def test_the_fingerprint_is_stable(self) -> None:
        assert machine_fingerprint() == machine_fingerprint() and len(machine_fingerprint()) == 16


class TestCompileCache:
    def test_open_links_published_entries_and_points_xla_at_a_private_folder(self, tmp_path: Path, clean_flags,
                                                                             monkeypatch) -> None:
        monkeypatch.setenv("TF_XLA_FLAGS", "--tf_xla_auto_jit=0")
        first = CompileCache.open(tmp_path)
        (first.shared / "old.pb").write_bytes(b"compiled")
        monkeypatch.setenv("TF_XLA_FLAGS", "--tf_xla_auto_jit=0")  # another process
        cache = CompileCache.open(tmp_path)
        assert cache.shared == tmp_path / f"xla-{machine_fingerprint()}" and cache.private.parent == cache.shared
        assert (cache.private / "old.pb").read_bytes() == b"compiled"
        assert os.environ["TF_XLA_FLAGS"] == f"--tf_xla_auto_jit=0 {XLA_FLAG}={cache.private}"
        first.discard()
        cache.discard()

    def test_publish_moves_only_new_entries_and_removes_the_private_folder(self, tmp_path: Path, clean_flags) -> None:
        cache = CompileCache.open(tmp_path)
        (cache.shared / "old.pb").write_bytes(b"published")
        cache.link_published()
        (cache.private / "new.pb").write_bytes(b"compiled here")
        (cache.private / "notes.txt").write_text("not an entry")
        assert [path.name for path in cache.publish()] == ["new.pb"]
        assert sorted(path.name for path in cache.published()) == ["new.pb", "old.pb"]
        assert (cache.shared / "new.pb").read_bytes() == b"compiled here" and not cache.private.exists()

    def test_discard_publishes_nothing(self, tmp_path: Path, clean_flags) -> None:
        cache = CompileCache.open(tmp_path)
        (cache.private / "half-written.pb").write_bytes(b"par")
        cache.discard()
        assert cache.published() == [] and not cache.private.exists()

    def test_a_flag_already_set_or_an_unusable_folder_turns_it_off(self, tmp_path: Path, clean_flags,
                                                                   monkeypatch) -> None:
        monkeypatch.setenv("TF_XLA_FLAGS", f"{XLA_FLAG}=/theirs")
        assert CompileCache.open(tmp_path) is None
        monkeypatch.delenv("TF_XLA_FLAGS")
        (tmp_path / "file").write_text("x")
        assert CompileCache.open(tmp_path / "file") is None
        assert "TF_XLA_FLAGS" not in os.environ

    def test_private_folders_of_runs_killed_long_ago_are_removed(self, tmp_path: Path, clean_flags,
                                                                 monkeypatch) -> None:
        cache = CompileCache.open(tmp_path)
        stale, recent = cache.shared / ".run-elsewhere-1-dead", cache.shared / ".run-elsewhere-2-busy"
        stale.mkdir()
        recent.mkdir()
        old = time.time() - 8 * 24 * 3600
        os.utime(stale, (old, old))
        monkeypatch.delenv("TF_XLA_FLAGS")  # another process
        other = CompileCache.open(tmp_path)
        assert not stale.exists() and recent.exists() and cache.private.exists()
        cache.discard()
        other.discard()


def test_prune_removes_the_oldest_entries_first(tmp_path: Path) -> None:
    for age, name in enumerate(("c.pb", "b.pb", "a.pb")):  # c is the newest
        (tmp_path / name).write_bytes(b"x" * 100)
        stamp = time.time() - 100 * age
        os.utime(tmp_path / name, (stamp, stamp))
    prune(tmp_path, 250)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["b.pb", "c.pb"]


def test_a_second_run_loads_what_the_first_compiled_and_writes_the_same_bytes(toy_pair, tmp_path: Path) -> None:
    environment = {**os.environ, CACHE_ENV: str(tmp_path / "cache")}
    for name in ("TF_XLA_FLAGS", "TF_CPP_MIN_LOG_LEVEL"):  # as a user's shell has them
        environment.pop(name, None)
    outputs = []
    for run in range(2):  # the toy pair at its own 48x64: a fit large enough to be compiled (COMPILED_LEVEL_PIXELS)
        output = tmp_path / f"run{run}.gif"
        done = subprocess.run(
            [sys.executable, str(ROOT / "morph.py"), "-s", str(toy_pair[0]), "-t", str(toy_pair[1]), "-o",
             str(output), "--size", "64", "-e", "3", "--frames", "3", "-q"],
            capture_output=True, text=True, timeout=300, env=environment, check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""  # quiet: nothing from XLA loading the cached programs either
        outputs.append(output.read_bytes())
        shared = next((tmp_path / "cache").glob("xla-*"))
        entries = sorted(path.name for path in shared.glob("*.pb"))
        assert entries and not list(shared.glob(".run-*"))
        if run == 0:
            first_entries = entries
    assert entries == first_entries  # nothing new compiled: all loaded
    assert outputs[0] == outputs[1]


class TestFailures:
    def test_too_little_free_space_turns_it_off(self, tmp_path: Path, clean_flags, monkeypatch) -> None:
        from morphing.runtime import compile_cache

        monkeypatch.setattr(compile_cache.shutil, "disk_usage", lambda path: shutil_usage(free=10 * 2**20))
        assert CompileCache.open(tmp_path) is None and "TF_XLA_FLAGS" not in os.environ

    def test_private_folders_go_when_their_process_has_gone_or_long_ago_elsewhere(self, tmp_path: Path, clean_flags,
                                                                                monkeypatch) -> None:
        from morphing.runtime.compile_cache import host_name

        shared = tmp_path / f"xla-{machine_fingerprint()}"
        shared.mkdir()
        gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True).stdout.strip()
        folders = {
            "mine, running": shared / f".run-{host_name()}-{os.getpid()}-aaaa",
            "mine, gone": shared / f".run-{host_name()}-{gone}-bbbb",
            "elsewhere, old": shared / ".run-othermachine-12-cccc",
            "elsewhere, recent": shared / ".run-othermachine-13-dddd",
        }
        for folder in folders.values():
            folder.mkdir()
        old = time.time() - 8 * 24 * 3600
        os.utime(folders["elsewhere, old"], (old, old))
        CompileCache.open(tmp_path).discard()
        assert {name for name, folder in folders.items() if folder.exists()} == {"mine, running", "elsewhere, recent"}

    def test_an_error_naming_the_cache_becomes_a_hint(self) -> None:
        message = "/home/u/.cache/morphing/xla-0123456789abcdef/.run-vm-8-ab12cd34 is not a directory\n [[node]]"
        hint = failure_hint(message)
        assert hint is not None and hint.startswith("the compile cache in /home/u/.cache/morphing/xla-0123456789abcdef")
        assert "MORPH_CACHE_DIR=off" in hint and "\n" not in hint
        assert failure_hint("an ordinary failure") is None

    def test_a_run_whose_cache_breaks_under_it_says_so_in_one_line(self, toy_pair, tmp_path: Path) -> None:
        code = (
            "import shutil, sys\n"
            "from pathlib import Path\n"
            "from morphing.runtime.compile_cache import CompileCache\n"
            f"cache = CompileCache.open(Path({str(tmp_path / 'cache')!r}))\n"
            "shutil.rmtree(cache.private)\n"
            "cache.private.write_text('not a folder any more')  # as a full disk would fail XLA's write\n"
            "from morphing.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code, "-s", str(toy_pair[0]), "-t", str(toy_pair[1]), "-o", str(tmp_path / "o.gif"),
             "--size", "64", "-e", "2", "--frames", "3", "-q"],
            capture_output=True, text=True, timeout=300, cwd=ROOT, check=False,
            env={**os.environ, CACHE_ENV: "off"},
        )
        assert done.returncode == 1
        assert done.stderr.startswith("morph: error: the compile cache in ") and len(done.stderr.splitlines()) == 1
        assert "MORPH_CACHE_DIR=off" in done.stderr and not (tmp_path / "o.gif").exists()


DiskUsage = collections.namedtuple("DiskUsage", "total used free")


def shutil_usage(free: int) -> DiskUsage:
    return DiskUsage(total=2**40, used=2**40 - free, free=free)
