"""Log-magnitude interpolation across each hole from its edges, in time and in frequency.

The classic non-learned baseline: every missing bin takes the inverse-distance-weighted mean of the
linear interpolations along its row (time) and its column (frequency) between the nearest known bins.
It is written in torch, batched over leading dimensions, because the network can also start from it
(model.fill = "interp"): then it runs on every training batch, on whatever device trains.
"""

from __future__ import annotations

import torch


def _interpolate_last_axis(values: torch.Tensor, missing: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Linear interpolation along the last axis; returns (estimate, distance to the nearest known bin).

    Where only one side is known the estimate is that side's value; where neither is, distance is inf.
    """
    cols = values.shape[-1]
    idx = torch.arange(cols, device=values.device).expand_as(values)
    known = ~missing
    left = torch.where(known, idx, -1).cummax(dim=-1).values
    right = torch.where(known, idx, cols).flip(-1).cummin(dim=-1).values.flip(-1)
    has_l, has_r = left >= 0, right < cols
    lv = values.gather(-1, left.clamp(0, cols - 1))
    rv = values.gather(-1, right.clamp(0, cols - 1))
    w = (idx - left) / (right - left).clamp_min(1)
    est = torch.where(has_l & has_r, (1 - w) * lv + w * rv, torch.where(has_l, lv, rv))
    inf = torch.tensor(float("inf"), device=values.device)
    dist = torch.minimum(torch.where(has_l, (idx - left).float(), inf), torch.where(has_r, (right - idx).float(), inf))
    return est, dist


def interpolate_log_magnitude(log_mag: torch.Tensor, missing: torch.Tensor) -> torch.Tensor:
    """Fill the missing bins of a [..., bins, frames] log-magnitude; known bins are returned unchanged."""
    t_est, t_dist = _interpolate_last_axis(log_mag, missing)
    f_est, f_dist = _interpolate_last_axis(log_mag.transpose(-1, -2), missing.transpose(-1, -2))
    f_est, f_dist = f_est.transpose(-1, -2), f_dist.transpose(-1, -2)
    wt = torch.where(t_dist.isfinite(), 1.0 / t_dist.clamp_min(1), 0.0)
    wf = torch.where(f_dist.isfinite(), 1.0 / f_dist.clamp_min(1), 0.0)
    total = wt + wf
    blend = (wt * t_est.nan_to_num() + wf * f_est.nan_to_num()) / torch.where(total > 0, total, 1.0)
    # Bins with no known bin in their row or column take the mean of the known bins of their item.
    known = (~missing).to(log_mag.dtype)
    fallback = (log_mag * known).sum(dim=(-2, -1), keepdim=True) / known.sum(dim=(-2, -1), keepdim=True).clamp_min(1)
    filled = torch.where(total > 0, blend, fallback)
    return torch.where(missing, filled, log_mag)
