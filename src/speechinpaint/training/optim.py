"""The optimizer and learning-rate schedule both networks train with."""

from __future__ import annotations

import math

import torch

from .config import OptimConfig


def warmup_cosine(parameters, optim: OptimConfig, max_steps: int):
    """(AdamW, its per-step schedule): a linear warm-up, then a cosine down to final_lr_fraction of the
    rate at max_steps."""
    opt = torch.optim.AdamW(parameters, lr=optim.lr, weight_decay=optim.weight_decay)
    warmup, floor = optim.warmup_steps, optim.final_lr_fraction

    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, max_steps - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)
