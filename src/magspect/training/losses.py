"""Losses for thin structures: weighted cross entropy (or focal) plus soft Dice on defect classes."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

IGNORE_INDEX = 255  # magspect.training.data.IGNORE_ID: pixels without a usable label


class SegLoss(nn.Module):
    """``ce_weight * CE(or focal) + dice_weight * (1 - mean soft Dice over dice_classes)``.

    Dice is computed over the whole batch per class, so a crop without a crack does not produce a
    0/0 term; classes absent from both prediction and truth in the batch are skipped. Pixels
    labelled :data:`IGNORE_INDEX` count in neither term.
    """

    def __init__(
        self,
        class_weights: list[float] | None = None,
        ce_weight: float = 1.0,
        dice_weight: float = 1.0,
        focal_gamma: float = 0.0,
        dice_classes: list[int] | tuple[int, ...] = (2, 3, 4),
    ) -> None:
        super().__init__()
        w = torch.tensor(class_weights, dtype=torch.float32) if class_weights is not None else None
        self.register_buffer("class_weights", w, persistent=False)
        self.ce_weight, self.dice_weight, self.focal_gamma = ce_weight, dice_weight, focal_gamma
        self.dice_classes = list(dice_classes)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = logits.new_zeros(())
        valid = target != IGNORE_INDEX
        if not bool(valid.all()):
            target = torch.where(valid, target, torch.zeros_like(target))
        if self.ce_weight and bool(valid.any()):
            if self.focal_gamma > 0:
                logp = F.log_softmax(logits, dim=1)
                logp_t = logp.gather(1, target[:, None]).squeeze(1)
                focal = -((1 - logp_t.exp()) ** self.focal_gamma) * logp_t
                wt = self.class_weights[target] if self.class_weights is not None else torch.ones_like(focal)
                wt = wt * valid
                loss = loss + self.ce_weight * (focal * wt).sum() / wt.sum()
            else:
                ce_target = torch.where(valid, target, torch.full_like(target, IGNORE_INDEX))
                loss = loss + self.ce_weight * F.cross_entropy(
                    logits, ce_target, weight=self.class_weights, ignore_index=IGNORE_INDEX
                )
        if self.dice_weight and self.dice_classes:
            probs = logits.softmax(dim=1) * valid[:, None]
            dims = (0, 2, 3)
            onehot = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2).to(probs.dtype) * valid[:, None]
            p = probs[:, self.dice_classes]
            t = onehot[:, self.dice_classes]
            inter = (p * t).sum(dims)
            denom = p.sum(dims) + t.sum(dims)
            present = t.sum(dims) > 0
            dice = (2 * inter + 1.0) / (denom + 1.0)
            if present.any():
                loss = loss + self.dice_weight * (1 - dice[present]).mean()
            else:  # no defect in the batch: push predicted defect mass down
                loss = loss + self.dice_weight * p.mean() * 0.1
        return loss
