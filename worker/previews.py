"""What every task's augmentation preview shares: a normalised tensor back to the picture the model sees,
and a drawn preview recorded as the job's artifact."""

from __future__ import annotations

import torch
from PIL import Image

from backend.models.contract import ArtifactKind
from worker.context import JobContext
from worker.jobs.common import record_artifact


def to_pil(tensor: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> Image.Image:
    """Undo the normalisation so the picture shows what the model will see."""
    m = torch.tensor(mean).view(3, 1, 1)
    s = torch.tensor(std).view(3, 1, 1)
    pixels = (tensor * s + m).clamp(0, 1).mul(255).round().to(torch.uint8)
    return Image.fromarray(pixels.permute(1, 2, 0).contiguous().numpy())


def save_preview(ctx: JobContext, index: int, picture: Image.Image) -> int:
    """The ``index``-th preview as a PNG artifact of the job; its id."""
    path = ctx.work_dir / f"preview_{index}.png"
    picture.save(path, format="PNG")
    return record_artifact(ctx, kind=ArtifactKind.preview, name=path.name, path=path, media_type="image/png")
