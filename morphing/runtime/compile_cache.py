"""XLA's compiled programs kept between runs, so that a second morph of the same size skips compiling.

The fit's training step compiles its full-size parts with XLA, seconds of every
run on a CPU. TensorFlow can keep what XLA compiles in a folder
(``--tf_xla_persistent_cache_directory``) and load it next time; this module
makes that safe to share between processes:

- each process gives XLA a private folder of its own, holding links to the
  entries published so far, and publishes what it adds only when it ends
  normally, by renaming complete files into the shared folder: a run killed
  while compiling (or two shards compiling at once) never leaves a half-written
  entry that would make later runs fail;
- the shared folder is named after the TensorFlow version and this machine's
  processor (and GPUs), so a cluster's shared home folder never hands one
  machine code compiled for another;
- the folder is kept under ``MAX_BYTES`` (oldest entries go first); private
  folders of killed runs are removed (on this machine once their process is
  gone); with less than ``MIN_FREE_BYTES`` free there, nothing is cached, since
  XLA fails a run whose entry it cannot write (``failure_hint`` words that
  failure for the user).

Nothing here imports TensorFlow: ``CompileCache.open`` must run before it is
imported (it sets ``TF_XLA_FLAGS``). ``MORPH_CACHE_DIR`` names the cache's
root (default ``$XDG_CACHE_HOME/morphing`` or ``~/.cache/morphing``); set it
to ``off`` (or empty) to keep nothing.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import re
import secrets
import shutil
import time
from pathlib import Path

__all__ = ["CACHE_ENV", "MAX_BYTES", "CompileCache", "default_root", "failure_hint", "machine_fingerprint"]

CACHE_ENV = "MORPH_CACHE_DIR"
XLA_FLAG = "--tf_xla_persistent_cache_directory"
MAX_BYTES = 256 * 2**20
"""The shared folder is pruned to this size (oldest entries first) after publishing."""
STALE_SECONDS = 7 * 24 * 3600
"""Private folders of another machine older than this belong to runs that were killed: removed when a cache
opens (on this machine, a private folder goes as soon as its process is gone)."""
MIN_FREE_BYTES = 512 * 2**20
"""Less free space than this where the cache lives turns it off: XLA fails a run whose entry it cannot write."""
ENTRY_SUFFIX = ".pb"


def default_root() -> Path | None:
    """The cache's root folder: ``$MORPH_CACHE_DIR``, or ``None`` when that is ``off`` or empty;
    else ``$XDG_CACHE_HOME/morphing``, else ``~/.cache/morphing``; ``None`` when there is no home folder."""
    given = os.environ.get(CACHE_ENV)
    if given is not None:
        return None if given.strip().lower() in ("", "off", "0", "no") else Path(given)
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except (RuntimeError, KeyError, OSError):  # no HOME and no passwd entry (a container's --user 12345)
            return None
    return Path(base) / "morphing"


def machine_fingerprint() -> str:
    """A short hash of what compiled code depends on: TensorFlow's version, the processor and its
    features, and the NVIDIA GPUs (their names), as far as the system says without TensorFlow."""
    parts = [platform.machine(), platform.system()]
    try:
        parts.append(importlib.metadata.version("tensorflow"))
    except importlib.metadata.PackageNotFoundError:
        parts.append("no tensorflow")
    try:
        cpu = Path("/proc/cpuinfo").read_text(errors="replace").splitlines()
        parts += sorted({line for line in cpu if line.startswith(("model name", "flags", "Features", "CPU part"))})
    except OSError:
        parts.append(platform.processor())
    for information in sorted(Path("/proc/driver/nvidia/gpus").glob("*/information")):
        try:
            parts += [line for line in information.read_text(errors="replace").splitlines() if line.startswith("Model")]
        except OSError:
            parts.append(str(information))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


class CompileCache:
    """One process's view of the shared cache of compiled programs.

    Attributes:
      shared: the folder of published entries (one per TensorFlow version and machine).
      private: this process's folder, given to XLA; it starts with links to every published entry.
    """

    def __init__(self, shared: Path, private: Path) -> None:
        self.shared = shared
        self.private = private

    @classmethod
    def open(cls, root: Path | None = None) -> CompileCache | None:
        """Prepare a private folder under ``root`` (default ``default_root()``) and point XLA at it.

        Returns ``None`` (and changes nothing) when caching is off or the folder cannot be used.
        Sets ``TF_XLA_FLAGS``, so it must be called before TensorFlow is imported; a
        persistent cache folder that the user set there already is left as it is.
        """
        root = default_root() if root is None else root
        if root is None or XLA_FLAG in os.environ.get("TF_XLA_FLAGS", ""):
            return None
        shared = root / f"xla-{machine_fingerprint()}"
        try:
            shared.mkdir(parents=True, exist_ok=True)
            if shutil.disk_usage(shared).free < MIN_FREE_BYTES:
                return None
            _remove_stale_private_folders(shared)
            private = shared / f".run-{host_name()}-{os.getpid()}-{secrets.token_hex(4)}"
            private.mkdir()
        except OSError:
            return None
        cache = cls(shared, private)
        cache.link_published()
        flags = os.environ.get("TF_XLA_FLAGS", "")
        os.environ["TF_XLA_FLAGS"] = f"{flags} {XLA_FLAG}={private}".strip()
        return cache

    def link_published(self) -> None:
        """Link every published entry into the private folder (a symbolic link where hard ones fail)."""
        for entry in self.published():
            target = self.private / entry.name
            try:
                os.link(entry, target)
            except OSError:
                try:
                    target.symlink_to(entry)
                except OSError:
                    continue

    def published(self) -> list[Path]:
        """The entries in the shared folder."""
        return sorted(self.shared.glob(f"*{ENTRY_SUFFIX}"))

    def publish(self) -> list[Path]:
        """Move the entries this run added into the shared folder (each by one atomic rename);
        prune the shared folder; remove the private one. Returns what was published.

        Call only when the run ended normally: an entry XLA was still writing is then complete.
        """
        added = []
        try:
            for entry in sorted(self.private.glob(f"*{ENTRY_SUFFIX}")):
                destination = self.shared / entry.name
                if entry.is_symlink() or destination.exists():
                    continue
                os.replace(entry, destination)
                added.append(destination)
            prune(self.shared, MAX_BYTES)
        except OSError:
            pass
        self.discard()
        return added

    def discard(self) -> None:
        """Remove the private folder, publishing nothing (after an interrupted or failed run)."""
        shutil.rmtree(self.private, ignore_errors=True)


def prune(folder: Path, max_bytes: int) -> None:
    """Remove the oldest entries of ``folder`` (by modification time) until it holds at most ``max_bytes``."""
    entries = []
    for entry in folder.glob(f"*{ENTRY_SUFFIX}"):
        try:
            status = entry.stat()
        except OSError:
            continue
        entries.append((status.st_mtime, status.st_size, entry))
    total = sum(size for _, size, _ in entries)
    for _, size, entry in sorted(entries, key=lambda item: (item[0], item[2].name)):
        if total <= max_bytes:
            break
        entry.unlink(missing_ok=True)
        total -= size


def failure_hint(message: str) -> str | None:
    """A line to show when an error's ``message`` names a compile cache's folder, else ``None``.

    XLA fails the operation it compiles when it cannot write or read an entry
    (a disk filled during the run, a folder removed under it): the user is told
    which folder and how to run without it.
    """
    found = re.search(r"(\S*/xla-[0-9a-f]{16})/", message)
    if found is None:
        return None
    return (f"the compile cache in {found.group(1)} failed ({message.strip().splitlines()[0][:200]}); "
            f"run again with {CACHE_ENV}=off, or free space there")


def host_name() -> str:
    """This machine's name, as a folder name may hold it."""
    return re.sub(r"[^A-Za-z0-9_.]", "_", platform.node() or "host")


def _remove_stale_private_folders(shared: Path) -> None:
    """Remove the private folders of runs that ended without cleaning up: on this machine, those whose
    process is gone; of other machines (a shared home folder), those untouched for ``STALE_SECONDS``."""
    now = time.time()
    for folder in shared.glob(".run-*"):
        host, _, rest = folder.name.removeprefix(".run-").rpartition("-")[0].rpartition("-")
        try:
            if host == host_name():
                if not _alive(int(rest)):
                    shutil.rmtree(folder, ignore_errors=True)
            elif now - folder.stat().st_mtime > STALE_SECONDS:
                shutil.rmtree(folder, ignore_errors=True)
        except (OSError, ValueError):
            continue


def _alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
