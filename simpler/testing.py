"""Helpers for device tests: golden comparison with dtype-aware tolerances."""
from __future__ import annotations

import numpy as np

# (rtol, atol) by dtype kind and size: loose enough for reassociated float
# sums, tight enough to catch a wrong element.
_TOLERANCES = {
    np.dtype(np.float16): (1e-2, 1e-2),
    np.dtype(np.float32): (1e-5, 1e-6),
    np.dtype(np.float64): (1e-12, 1e-12),
}


def tolerances(dtype) -> tuple[float, float]:
    """Default (rtol, atol) for comparing results of this dtype."""
    return _TOLERANCES.get(np.dtype(dtype), (0.0, 0.0))


def assert_golden(actual: np.ndarray, expected: np.ndarray, rtol: float | None = None,
                  atol: float | None = None, name: str = "result") -> None:
    """Assert actual matches the golden result: same shape, elements within
    tolerance (exact for integers). The message says how many elements differ
    and shows the worst."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    if actual.shape != expected.shape:
        raise AssertionError(f"{name}: shape {actual.shape} != golden shape {expected.shape}")
    d_rtol, d_atol = tolerances(actual.dtype)
    rtol = d_rtol if rtol is None else rtol
    atol = d_atol if atol is None else atol
    close = np.isclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True)
    if close.all():
        return
    bad = [tuple(int(i) for i in idx) for idx in np.argwhere(~close)]
    diff = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    # Among the differing elements only; a NaN difference counts as the worst.
    diff = np.where(close, -1.0, np.where(np.isnan(diff), np.inf, diff))
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(diff)), actual.shape))
    raise AssertionError(
        f"{name}: {len(bad)} of {actual.size} elements differ beyond rtol={rtol}, atol={atol}; "
        f"first at {bad[0]}: {actual[bad[0]]} vs {expected[bad[0]]}; "
        f"worst at {worst}: {actual[worst]} vs {expected[worst]}")
