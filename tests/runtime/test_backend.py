"""Starting TensorFlow quietly (``morphing.runtime.backend``)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_forced_cpu_hides_gpus_skips_graph_rewrites_and_start_up_is_silent() -> None:
    code = ("from morphing.runtime.backend import load_tensorflow, device_description; "
            "tf = load_tensorflow(force_cpu=True); "
            "print(device_description(tf), len(tf.config.list_physical_devices('GPU')), "
            "tf.config.optimizer.get_experimental_options().get('disable_meta_optimizer'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          check=False, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "CPU 0 True"  # no GPU: no graph rewriting either
    assert done.stderr == ""  # TensorFlow's start-up chatter is captured


def test_a_failing_import_is_one_line() -> None:
    code = ("import sys; sys.modules['tensorflow'] = None; "
            "from morphing.runtime.backend import BackendError, load_tensorflow\n"
            "try:\n    load_tensorflow()\nexcept BackendError as error:\n    print('refused:', error)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("refused: cannot start TensorFlow:") and len(done.stdout.splitlines()) == 1
