"""Helpers shared by the tests: a finite-difference gradient check."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf


def assert_gradients_match(
    function: Callable[..., tf.Tensor], inputs: Sequence[np.ndarray], *, tolerance: float = 1e-6, delta: float = 1e-6
) -> None:
    """``function``'s analytic gradients with respect to every input equal central finite differences.

    The inputs are cast to float64 (so the differences are accurate); the
    largest absolute difference between the two Jacobians must be below
    ``tolerance`` times the largest Jacobian entry (and the Jacobian must not
    be all zeros, which would pass trivially).
    """
    tensors = [tf.constant(np.asarray(value, np.float64)) for value in inputs]
    theoretical, numerical = tf.test.compute_gradient(function, tensors, delta=delta)
    for analytic, finite in zip(theoretical, numerical):
        scale = max(float(np.abs(finite).max()), 1e-12)
        assert np.abs(finite).max() > 0, "the gradient is all zeros: nothing was checked"
        assert np.abs(analytic - finite).max() <= tolerance * scale, np.abs(analytic - finite).max() / scale
