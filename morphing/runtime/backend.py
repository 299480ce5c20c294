"""Loading TensorFlow quietly and saying which device it will use.

``import tensorflow`` prints start-up lines (oneDNN, CUDA probing) on the
process's standard error from C++, which ``TF_CPP_MIN_LOG_LEVEL`` does not
silence; turning oneDNN off would make the network 5x slower. So the import is
done with file descriptor 2 pointed at a temporary file, which is shown only if
the import fails.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from types import ModuleType

__all__ = ["BackendError", "load_tensorflow", "tensorflow_started", "device_description"]


class BackendError(RuntimeError):
    """TensorFlow could not be imported."""


@contextlib.contextmanager
def _stderr_captured() -> Iterator[tempfile.SpooledTemporaryFile]:
    """Point file descriptor 2 at a temporary file for the duration."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield capture
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def tensorflow_started() -> bool:
    """Whether this process has imported TensorFlow already (then its start-up settings, XLA's flags and
    the devices it sees, are fixed). The one place that asks; callers pass the answer on."""
    return sys.modules.get("tensorflow") is not None


def load_tensorflow(force_cpu: bool = False) -> ModuleType:
    """Import TensorFlow with its start-up chatter hidden; return the module.

    With ``force_cpu`` the GPUs are hidden from TensorFlow. Raises
    ``BackendError`` with TensorFlow's last message if the import fails.

    TensorFlow's C++ logging is limited to fatal messages (``TF_CPP_MIN_LOG_LEVEL=3``,
    unless set already): loading a program from XLA's persistent cache
    (``morphing.runtime.compile_cache``) logs three false alarms at error level (a
    text-format parse it retries as binary, and CPU tuning flags it mistakes
    for missing features). Real failures still reach Python as exceptions.
    When TensorFlow sees no GPU, its graph rewriter is turned off
    (``_skip_graph_rewrites``: on a CPU it costs a morph about a second and saves it nothing).
    """
    if tensorflow_started():  # its environment is read already: only check what it sees
        import tensorflow as tf

        if force_cpu and tf.config.list_logical_devices("GPU"):
            raise BackendError("TensorFlow is running on the GPU already: staying on the CPU (--cpu) must be "
                               "chosen before it starts")
        tf.get_logger().setLevel("ERROR")
        return tf
    # Read by TensorFlow when it starts, so written just before the import and never after.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if force_cpu:
        os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
    with _stderr_captured() as capture:
        try:
            import keras  # noqa: F401 - its import logs too
            import tensorflow as tf

            tf.get_logger().setLevel("ERROR")  # e.g. retracing notices meant for developers
            tf.config.list_physical_devices()  # device probing also logs
            tf.constant(0.0) + 1.0  # so does creating the first device
        except Exception as error:  # noqa: BLE001 - reported as one line
            capture.seek(0)
            lines = capture.read().decode(errors="replace").strip().splitlines()
            detail = lines[-1] if lines else str(error)
            raise BackendError(f"cannot start TensorFlow: {error} ({detail})") from None
    if not tf.config.list_physical_devices("GPU"):
        _skip_graph_rewrites(tf)
    return tf


def _skip_graph_rewrites(tf: ModuleType) -> None:
    """Turn off Grappler, TensorFlow's graph rewriter, for this process (on a CPU-only run).

    Grappler rewrites every traced graph the first time it runs: on 2 CPU
    cores that took 0.8-1.2 s of a default morph (the training step's first
    run and its compiled terms'), about 0.5 s of it on the critical path,
    and the steps after it ran no faster for it (measured 7 December 2026:
    55-63 ms a step either way). The fit's result changes by float rounding
    only (the loss agrees to six digits over the first steps; the development
    set and the synthetic scenes score the same within rounding). On a GPU
    the rewrites stay: there its layout rewrite feeds cuDNN the layout it is
    fastest with.
    """
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})


def device_description(tf: ModuleType) -> str:
    """``"GPU (NAME)"`` when TensorFlow sees a GPU, else ``"CPU"``."""
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU"
    details = tf.config.experimental.get_device_details(gpus[0])
    return f"GPU ({details.get('device_name', gpus[0].name)})"
