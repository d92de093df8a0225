"""Log-magnitude interpolation across each hole from its edges, in time and in frequency.

The classic non-learned baseline: every missing bin takes the inverse-distance-weighted mean of the
linear interpolations along its row (time) and its column (frequency) between the nearest known bins.
"""

from __future__ import annotations

import numpy as np


def _interpolate_rows(values: np.ndarray, missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation along the last axis; returns (estimate, distance to the nearest known bin).

    Where only one side is known the estimate is that side's value; where neither is, distance is inf.
    """
    rows, cols = values.shape
    idx = np.broadcast_to(np.arange(cols), (rows, cols))
    known = ~missing
    left = np.maximum.accumulate(np.where(known, idx, -1), axis=1)
    right = np.minimum.accumulate(np.where(known, idx, cols)[:, ::-1], axis=1)[:, ::-1]
    has_l, has_r = left >= 0, right < cols
    lv = np.take_along_axis(values, np.clip(left, 0, cols - 1), axis=1)
    rv = np.take_along_axis(values, np.clip(right, 0, cols - 1), axis=1)
    span = np.maximum(right - left, 1)
    w = (idx - left) / span
    est = np.where(has_l & has_r, (1 - w) * lv + w * rv, np.where(has_l, lv, rv))
    dist = np.minimum(np.where(has_l, idx - left, np.inf), np.where(has_r, right - idx, np.inf))
    return est, dist.astype(float)


def interpolate_log_magnitude(log_mag: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """Fill the missing bins of a [bins, frames] log-magnitude; known bins are returned unchanged."""
    t_est, t_dist = _interpolate_rows(log_mag, missing)
    f_est, f_dist = _interpolate_rows(log_mag.T, missing.T)
    f_est, f_dist = f_est.T, f_dist.T
    wt = np.where(np.isfinite(t_dist), 1.0 / np.maximum(t_dist, 1), 0.0)
    wf = np.where(np.isfinite(f_dist), 1.0 / np.maximum(f_dist, 1), 0.0)
    total = wt + wf
    blend = (wt * np.nan_to_num(t_est) + wf * np.nan_to_num(f_est)) / np.where(total > 0, total, 1)
    fallback = log_mag[~missing].mean() if np.any(~missing) else 0.0
    filled = np.where(total > 0, blend, fallback)
    return np.where(missing, filled, log_mag)
