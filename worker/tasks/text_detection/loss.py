"""The DBNet loss (the paper's Eq. 10, mmocr's ``DBModuleLoss`` weights):

    L = alpha * L_prob + beta * L_thresh + L_binary

- ``L_prob``: balanced binary cross-entropy on the probability map inside ``mask``, with hard-negative
  mining (the reference's ``BalanceCrossEntropyLoss``, mmocr's ``MaskedBalancedBCEWithLogitsLoss``): every
  positive pixel and the ``ohem_ratio`` x positives negative pixels with the largest loss, over the batch.
  Text covers a few percent of a page, so plain BCE would learn "no text"; mining keeps the hard background
  (textures, strokes that look like letters) in play. Taken on logits for numerical stability.
- ``L_binary``: dice loss on the approximate binary map B inside ``mask`` (the reference's ``DiceLoss``).
- ``L_thresh``: L1 between the threshold map and its target inside ``thresh_mask`` (``MaskL1Loss``).

A batch without text has no positives and so no mined negatives: ``L_prob`` is 0, ``L_binary`` is the
constant 1 and ``L_thresh`` 0 — finite, with zero gradients rather than NaN."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

TARGET_KEYS = ("gt", "mask", "thresh_map", "thresh_mask")


def _map(t: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) or (B, H, W) as (B, H, W)."""
    return t[:, 0] if t.dim() == 4 else t


class DBLoss(nn.Module):
    """``forward(outputs, targets)`` -> ``(total, {"loss_prob", "loss_thresh", "loss_binary"})`` with the
    parts detached. ``outputs`` is a train-mode DBNet output (``prob_logits``, ``thresh``, ``binary``),
    ``targets`` the ``db_targets`` maps as (B, H, W) tensors."""

    def __init__(
        self, alpha: float = 5.0, beta: float = 10.0, ohem_ratio: float = 3.0, eps: float = 1e-6
    ) -> None:
        super().__init__()
        self.alpha, self.beta, self.ohem_ratio, self.eps = alpha, beta, ohem_ratio, eps

    def balanced_bce(self, logits: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """All positives plus the hardest ``ohem_ratio`` x as many negatives, averaged over those pixels."""
        positive = gt * mask
        negative = (1.0 - gt) * mask
        n_pos = int(positive.sum().item())
        n_neg = min(int(negative.sum().item()), int(n_pos * self.ohem_ratio))
        loss = F.binary_cross_entropy_with_logits(logits, gt, reduction="none")
        positive_loss = (loss * positive).sum()
        if n_neg > 0:
            negative_loss = torch.topk((loss * negative).flatten(), n_neg, sorted=False).values.sum()
        else:
            negative_loss = loss.new_zeros(())
        return (positive_loss + negative_loss) / (n_pos + n_neg + self.eps)

    def dice(self, binary: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        intersection = (binary * gt * mask).sum()
        union = (binary * mask).sum() + (gt * mask).sum() + self.eps
        return 1.0 - 2.0 * intersection / union

    def masked_l1(self, thresh: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return ((thresh - target).abs() * mask).sum() / (mask.sum() + self.eps)

    def forward(
        self, outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        missing = [k for k in TARGET_KEYS if k not in targets]
        if missing:
            raise KeyError(f"DBLoss targets lack {', '.join(missing)}")
        logits = _map(outputs["prob_logits"]).float()
        gt, mask = _map(targets["gt"]).float(), _map(targets["mask"]).float()
        loss_prob = self.balanced_bce(logits, gt, mask)
        loss_binary = self.dice(_map(outputs["binary"]).float(), gt, mask)
        loss_thresh = self.masked_l1(
            _map(outputs["thresh"]).float(),
            _map(targets["thresh_map"]).float(),
            _map(targets["thresh_mask"]).float(),
        )
        total = self.alpha * loss_prob + self.beta * loss_thresh + loss_binary
        parts = {
            "loss_prob": loss_prob.detach(),
            "loss_thresh": loss_thresh.detach(),
            "loss_binary": loss_binary.detach(),
        }
        return total, parts
