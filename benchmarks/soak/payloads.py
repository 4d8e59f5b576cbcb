"""The request bodies of the soak, prepared once by the driver and read by the locustfile.

``payloads.json`` holds Fashion-MNIST test images of the served home's newest snapshot (pixels,
PNG as base64, true label) and the paths of the clothing photos; the locustfile needs neither
fmnist nor numpy to read it.
"""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def default_photos_dir() -> Path:
    """The clothing photos' validation split (``$FMNIST_PHOTOS_DIR`` or ``../shared``)."""
    root = os.environ.get("FMNIST_PHOTOS_DIR") or REPO.parent / "shared/data/clothing-photos"
    return Path(root) / "validation"


def fashion_images(home: Path, count: int) -> list[dict[str, object]]:
    """The first ``count`` test images of ``home``'s newest snapshot: pixels, PNG, label."""
    from PIL import Image

    from fmnist.data.snapshot import load_snapshot
    from fmnist.platform.storage import FsspecStorage

    images, labels = load_snapshot(FsspecStorage(str(home / "lake"))).split("test")
    rows: list[dict[str, object]] = []
    for pixels, label in zip(images[:count], labels[:count], strict=True):
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        rows.append(
            {
                "label": int(label),
                "pixels": pixels.tolist(),
                "png_b64": base64.b64encode(buffer.getvalue()).decode("ascii"),
            }
        )
    return rows


def photo_paths(folder: Path) -> list[str]:
    """Every photo under ``folder`` (one sub-folder per class), sorted."""
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES)
    if not paths:
        raise SystemExit(f"error: no photos under {folder} (set --photos or FMNIST_PHOTOS_DIR)")
    return [str(p) for p in paths]


def write_payloads(home: Path, photos: Path, out: Path, count: int = 256) -> Path:
    """Write ``payloads.json`` to ``out`` and return its path."""
    out.write_text(
        json.dumps({"images": fashion_images(home, count), "photos": photo_paths(photos)})
    )
    return out
