"""Decode uploaded bytes into an oriented 8-bit image, refusing bombs before any pixel exists.

Accepted are JPEG (camera MPO files included), PNG, WebP, GIF (first frame), BMP and TIFF;
anything else is refused before any of its parsers runs, with a message saying what the data
looks like (a PDF, an HTML page, text, ...). The pixel count is read from the header and checked
against a limit before decoding, so a decompression bomb is never allocated. EXIF orientation is
applied, transparency is composited on a contrasting backdrop and 16/32-bit images are scaled to
8 bits. Every failure is an :class:`~fmnist.errors.InvalidImageError` whose ``kind`` says why.
"""

from __future__ import annotations

import io
import math
import re
import struct

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fmnist.errors import InvalidImageError

DEFAULT_MAX_PIXELS = 40_000_000
"""Default decoded pixel limit of photo preprocessing (``ServingSettings.max_image_pixels``)."""
ACCEPTED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
"""Pillow format ids that are opened (JPEG includes camera MPO files); others (EPS, PSD, ...)
are refused before any of their parsers runs."""

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)
_OTHER_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an office document)"),
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"%!PS", "a PostScript/EPS file"),
    (b"8BPS", "a Photoshop file"),
    (b"\x00\x00\x01\x00", "a Windows icon"),
)


def _describe_unknown(data: bytes) -> str:
    """Say what non-image bytes look like, for the 'unsupported' message."""
    for magic, what in _OTHER_MAGIC:
        if data.startswith(magic):
            return what
    if data[4:8] == b"ftyp":
        return "an ISO media file (HEIC/AVIF or video)"
    head = data[:512].lstrip().lower()
    if head.startswith((b"<svg", b"<?xml")) or b"<svg" in head:
        return "an SVG or XML document"
    if head.startswith((b"<!doctype html", b"<html")):
        return "an HTML document"
    try:
        text = data[:4096].decode("utf-8")
    except UnicodeDecodeError:
        return "binary data of no known image format"
    if text and all(ch.isprintable() or ch.isspace() for ch in text):
        return "text"
    return "binary data of no known image format"


def _sniff_format(data: bytes) -> str | None:
    """The accepted format the magic bytes announce, or None."""
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def _too_large(width: int, height: int, max_pixels: int) -> InvalidImageError:
    return InvalidImageError(
        "too_large",
        f"image is {width}x{height} = {width * height:,} pixels, above the limit of {max_pixels:,}",
    )


def _pillow_bomb(data: bytes, error: Exception, max_pixels: int) -> InvalidImageError:
    """The too_large error for an image above Pillow's own limit (``Image.MAX_IMAGE_PIXELS``:
    above it Pillow warns, and raises above twice it; the warning may be set to raise)."""
    numbers = [int(n) for n in re.findall(r"\d+", str(error))]
    size = _header_size(data)
    if size is not None:
        found = f"{size[0]}x{size[1]} = {size[0] * size[1]:,} pixels"
    else:
        found = f"{numbers[0]:,} pixels" if numbers else "too many pixels"
    if len(numbers) >= 2 and numbers[1] < max_pixels:
        return InvalidImageError(
            "too_large",
            f"image is {found}, above Pillow's decompression-bomb limit of {numbers[1]:,}",
        )
    return InvalidImageError("too_large", f"image is {found}, above the limit of {max_pixels:,}")


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_MODES: dict[tuple[int, int], str] = {
    (8, 0): "L",
    (8, 2): "RGB",
    (8, 4): "LA",
    (8, 6): "RGBA",
    (1, 3): "P",
    (2, 3): "P",
    (4, 3): "P",
    (8, 3): "P",
}
"""Pillow's mode of an 8-bit or palette PNG by (bit depth, colour type); others go to Pillow."""
_ORIENTATION_SOURCES = frozenset({"exif", "Raw profile type exif", "xmp", "XML:com.adobe.xmp"})
"""The ``info`` keys of a PNG from which Pillow reads an orientation."""


def _png_header(data: bytes) -> tuple[int, int, str] | None:
    """Width, height and Pillow mode from a PNG's IHDR chunk (the first, by the standard), for
    the common modes; None leaves the header to Pillow."""
    if len(data) < 33 or not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    mode = _PNG_MODES.get((depth, colour))
    if mode is None or width == 0 or height == 0:
        return None
    return width, height, mode


def header_info(data: bytes) -> tuple[int, int, str] | None:
    """Width, height and Pillow mode from the header alone (no pixel decoded, bypassing
    Pillow's bomb check), or None when no accepted format can read the header."""
    png = _png_header(data)  # the common upload, read without Pillow's parser (~20 us)
    if png is not None:
        return png
    prefix = data[:16]
    Image.init()
    for name in ACCEPTED_FORMATS:
        try:
            factory, accept = Image.OPEN[name]
            if accept is None or accept(prefix):
                header = factory(io.BytesIO(data), "")
                return (int(header.size[0]), int(header.size[1]), str(header.mode))
        except Exception:  # noqa: S112 - not this format, or unreadable: try the next
            continue
    return None


def decoded_bytes(width: int, height: int, mode: str) -> int:
    """The memory Pillow needs for a decoded ``width`` x ``height`` image in ``mode``."""
    try:
        bands = Image.getmodebands(mode)
    except (KeyError, ValueError):  # a mode Pillow does not list: assume the widest
        bands = 4
    if mode in ("I", "F") or mode.startswith("I;32"):
        bands *= 4
    elif mode.startswith("I;16"):
        bands *= 2
    return width * height * bands


def _header_size(data: bytes) -> tuple[int, int] | None:
    info = header_info(data)
    return None if info is None else (info[0], info[1])


def open_checked(data: bytes, max_pixels: int) -> Image.Image:
    """Open ``data`` lazily (header only) and check its format and pixel count.

    Raises :class:`InvalidImageError` (kind ``empty``, ``unsupported``, ``corrupt`` or
    ``too_large``); the pixels are decoded later by :func:`load_oriented`.
    """
    if not data:
        raise InvalidImageError("empty", "image is empty (0 bytes)")
    Image.init()  # registers the WebP and TIFF plugins (idempotent)
    # Check the size before Image.open, whose own (process-wide) limit warns or raises first.
    size = _header_size(data)
    if size is not None and size[0] * size[1] > max_pixels:
        raise _too_large(size[0], size[1], max_pixels)
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise _pillow_bomb(data, error, max_pixels) from error
    except UnidentifiedImageError as error:
        sniffed = _sniff_format(data)
        if sniffed is not None:
            raise InvalidImageError(
                "corrupt", f"{sniffed} data is corrupt: its header cannot be read"
            ) from error
        raise InvalidImageError(
            "unsupported",
            f"not a supported image: the data looks like {_describe_unknown(data)}; "
            f"accepted formats are {', '.join(ACCEPTED_FORMATS)}",
        ) from error
    except Exception as error:  # any parser failure on untrusted bytes is corrupt data
        what = _sniff_format(data) or "image"
        raise InvalidImageError(
            "corrupt", f"{what} header cannot be read ({type(error).__name__}: {error})"
        ) from error
    width, height = image.size
    if width <= 0 or height <= 0:
        raise InvalidImageError("empty", f"image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise _too_large(width, height, max_pixels)
    return image


def load_oriented(
    image: Image.Image, draft_longest: int | None
) -> tuple[Image.Image, tuple[int, int]]:
    """Decode the pixels (at a reduced JPEG scale if asked) and apply the EXIF orientation.

    Returns the oriented image and the oriented size of the full-resolution source.
    """
    width, height = image.size
    try:
        if draft_longest is not None and image.format in ("JPEG", "MPO"):
            factor = draft_longest / max(width, height)
            if factor < 0.5:
                image.draft(None, (math.ceil(width * factor), math.ceil(height * factor)))
        image.load()
    except Exception as error:  # truncated data, bad chunks, codec errors, ...
        what = image.format or "image"
        raise InvalidImageError(
            "corrupt", f"{what} data is corrupt ({type(error).__name__}: {error})"
        ) from error
    if image.format == "PNG" and not _ORIENTATION_SOURCES & image.info.keys():
        return image, (width, height)  # no EXIF or XMP block: nothing can rotate it
    try:
        orientation = int(image.getexif().get(0x0112, 1))
        oriented = ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block must not reject an otherwise good image
        return image, (width, height)
    swapped = orientation in (5, 6, 7, 8)
    return oriented, ((height, width) if swapped else (width, height))


def _to_8bit_gray(image: Image.Image) -> Image.Image:
    """Scale 16/32-bit integer and float grey images to 8-bit "L" (Pillow would clip them).

    Floats up to 1 are taken as [0, 1], integers up to 65535 as 16-bit; larger values are
    scaled by the maximum.
    """
    values = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    top = float(values.max()) if values.size else 0.0
    if image.mode == "F" and top <= 1.0:
        values = values * 255.0
    elif top > 65535.0:
        values = values * (255.0 / top)
    elif top > 255.0:
        values = values / 257.0
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8))


def flatten(image: Image.Image) -> Image.Image:
    """Return an "L" or "RGB" image; transparency is composited on a contrasting background."""
    mode = image.mode
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("L", "RGB"):
        return image
    elif mode == "1":
        return image.convert("L")
    elif mode.startswith("I") or mode == "F":
        return _to_8bit_gray(image)
    elif mode in ("LA", "La", "PA", "RGBa", "RGBA"):
        image = image.convert("RGBA")
    else:  # CMYK, YCbCr, LAB, HSV, RGBX
        image = image.convert("RGB")
    if image.mode != "RGBA":
        return image
    rgba = np.asarray(image).astype(np.float32)
    alpha = rgba[..., 3:] / 255.0
    if float(alpha.min()) >= 1.0:
        return image.convert("RGB")
    rgb = rgba[..., :3]
    weight = float(alpha.sum())
    lum = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    opaque_mean = float((lum * alpha[..., 0]).sum() / weight) if weight > 0 else 255.0
    # Composite light content on black and dark content on white, so it stands out.
    backdrop = 0.0 if opaque_mean > 127.5 else 255.0
    flat = rgb * alpha + backdrop * (1.0 - alpha)
    return Image.fromarray(np.clip(np.rint(flat), 0, 255).astype(np.uint8))


def decode_image(data: bytes, *, max_pixels: int, color: bool = False) -> Image.Image:
    """Decode JPEG, PNG, WebP, GIF (first frame), BMP or TIFF bytes into an oriented 8-bit image.

    The pixel count is checked from the header before the pixels are decoded, so a decompression
    bomb is rejected without allocating it. EXIF orientation is applied, transparency is
    composited on black (light content) or white (dark content), 16-bit images are scaled to 8
    bits. Returns mode "L", or "RGB" for a colour source when ``color`` is true (segmentation
    works better on colour). Raises :class:`InvalidImageError` (kind ``empty``, ``unsupported``,
    ``corrupt`` or ``too_large``).
    """
    image = flatten(load_oriented(open_checked(data, max_pixels), None)[0])
    return image if color else image.convert("L")
