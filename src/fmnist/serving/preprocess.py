"""Turn an uploaded image into the 28x28 uint8 Fashion-MNIST-like input the model expects.

Fashion-MNIST images are light garments on a black background: the product photo (white
background) was trimmed to the object, its longest side resized to 28 px, the canvas extended to
28x28 with the object's bounding box centred, and the intensities negated. A real photo shows a
garment on an ordinary background (bed, floor, wall), so :func:`preprocess_image`:

1. downscales to a working size (longest side ~256 px, area averaging; JPEGs are decoded at a
   reduced DCT scale directly);
2. models the background from the image's border ring (a few colour clusters, each with its own
   spread) and scores every pixel by its distance to the nearest background cluster;
3. thresholds that score (Otsu, with a floor), cleans the mask (opening, closing, hole filling)
   and keeps the largest connected component(s), ignoring specks; with ``segmentation="grabcut"``
   (the default) that mask initialises a GrabCut segmentation (:mod:`fmnist.serving.segmentation`),
   ``"colour"`` keeps the colour mask as it is;
4. inverts the luminance when the garment is darker than the background, so it ends up light on
   dark, and sets the background to 0 while keeping the garment's shading;
5. crops to the mask's bounding box, resizes its longest side to 28 px, pads to 28x28 with the
   bounding box centred (what Fashion-MNIST does, measured on its test set) or the intensity
   centroid centred (``centering="mass"``, what MNIST does), and stretches the contrast so the
   garment's 99th percentile is 255.

An image that already looks like Fashion-MNIST (28x28, grey, dark border) passes through
unchanged. Decoding (:func:`decode_image`) rejects decompression bombs from the header, before
any pixel is allocated. numpy, scipy and Pillow are used, and OpenCV for GrabCut (imported on the
first photo).
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

from fmnist import IMAGE_SIZE
from fmnist.errors import InvalidImageError

UInt8Array = npt.NDArray[np.uint8]
IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float32]
Mode = Literal["fashion_mnist", "photo"]
Centering = Literal["bbox", "mass"]
Segmentation = Literal["grabcut", "colour"]
SEGMENTATIONS: tuple[Segmentation, ...] = ("grabcut", "colour")
DEFAULT_SEGMENTATION: Segmentation = "grabcut"
"""GrabCut initialised from the colour model; ``colour`` is the colour model alone."""

DEFAULT_MAX_PIXELS = 40_000_000
"""Decoded pixel limit of :func:`preprocess_bytes` (``ServingSettings.max_image_pixels``)."""
ACCEPTED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
"""Pillow format ids that are opened (JPEG includes camera MPO files); others (EPS, PSD, ...)
are refused before any of their parsers runs."""
WORK_SIZE = 256
"""Longest side of the working image that segmentation runs on."""
DRAFT_MIN_SIZE = 192
"""JPEGs are DCT-decoded at the smallest scale whose longest side is still at least this."""
FASHION_MNIST_BORDER_MAX = 48
"""A 28x28 grey image whose border ring has a median at most this is taken as Fashion-MNIST
(99.9% of its test images have a border median <= 4)."""
BLANK_RANGE = 16
"""Grey levels above the background that count as foreground in a 28x28 pass-through image."""

_BORDER_FRACTION = 0.04  # width of the border ring that models the background
_CLUSTERS = 3  # background colour clusters
_MIN_CLUSTER_SHARE = 0.1  # smaller border clusters are the garment touching the edge
_NOISE_FLOOR = 4.0  # minimum spread of a background cluster per channel, in grey levels
_MIN_THRESHOLD = 2.5  # minimum distance (in cluster spreads) that counts as foreground
_MIN_COMPONENT_SHARE = 0.002  # of the working image: smaller components are specks
_KEEP_RELATIVE = 0.2  # keep components at least this share of the largest (pairs of shoes)
_STRETCH_PERCENTILE = 99.0
_KMEANS_POINTS = 1024  # clusters are fitted on at most this many (evenly spaced) points
_CENTRE_SHARE = 0.5  # a border cluster covering this share of the central box is the garment
_MAX_GARMENT_BORDER_SHARE = 0.4  # ... unless it covers at least this share of the border
_HYSTERESIS = 0.6  # weak foreground (this share of the Otsu threshold) joins strong neighbours
_GARMENT_LOW = 1.5  # a pixel nearer a garment colour than the background needs only this
_GARMENT_MIN_SHARE = 0.15  # garment colours: clusters of at least this share of the centre

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


@dataclass(frozen=True)
class PreprocessResult:
    """The model input made from one image, and what preprocessing found out about it.

    ``pixels`` is the uint8 28x28 image (light garment on black). ``bbox`` is the garment's
    ``(left, top, right, bottom)`` box in the oriented source image (None when nothing was found
    or for a Fashion-MNIST pass-through whose image is blank). ``background_level`` is the
    background's grey level (0-255) before any inversion; ``foreground_fraction`` the share of
    the image taken by the garment (0 for a blank image). ``segmentation`` names the method
    that found the garment (``none`` for a pass-through).
    """

    pixels: UInt8Array
    mode: Mode
    inverted: bool
    bbox: tuple[int, int, int, int] | None
    background_level: float
    foreground_fraction: float
    segmentation: str = "none"


# --------------------------------------------------------------------------------------------
# decoding


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


def _header_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from the header alone (bypassing Pillow's bomb check), or None."""
    prefix = data[:16]
    for name in ACCEPTED_FORMATS:
        try:
            factory, accept = Image.OPEN[name]
            if accept is None or accept(prefix):
                header = factory(io.BytesIO(data), "")
                return (int(header.size[0]), int(header.size[1]))
        except Exception:  # noqa: S112 - not this format, or unreadable: try the next
            continue
    return None


def _open_checked(data: bytes, max_pixels: int) -> Image.Image:
    """Open ``data`` lazily (header only) and check its format and pixel count."""
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


def _load_oriented(
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


def _flatten(image: Image.Image) -> Image.Image:
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
    image = _flatten(_load_oriented(_open_checked(data, max_pixels), None)[0])
    return image if color else image.convert("L")


# --------------------------------------------------------------------------------------------
# preprocessing


def _luminance(rgb: FloatArray) -> FloatArray:
    lum: FloatArray = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return lum


def _border_ring(a: FloatArray, width: int) -> FloatArray:
    """The values within ``width`` of the image edge of ``(..., h, w)``, as ``(..., n)``."""
    lead = a.shape[:-2]
    parts = (
        a[..., :width, :],
        a[..., -width:, :],
        a[..., width:-width, :width],
        a[..., width:-width, -width:],
    )
    return np.concatenate([p.reshape(*lead, -1) for p in parts], axis=-1)


def _kmeans(points: FloatArray, k: int, iterations: int = 8) -> tuple[FloatArray, IntArray]:
    """Deterministic Lloyd iterations on ``(c, n)`` points; initial centres at lightness
    quantiles. Returns centres ``(k, c)`` and each point's cluster."""
    n = points.shape[1]
    order = np.argsort(points[0], kind="stable")
    centres = points[:, order[((np.arange(k) + 0.5) / k * n).astype(np.intp)]].T.copy()
    assign = np.zeros(n, dtype=np.intp)
    for _ in range(iterations):
        d2 = np.zeros((k, n), dtype=np.float32)
        for ch in range(points.shape[0]):
            d2 += (points[ch][None, :] - centres[:, ch][:, None]) ** 2
        assign = d2.argmin(axis=0)
        for j in range(k):
            members = assign == j
            if members.any():
                centres[j] = points[:, members].mean(axis=1)
    return centres, assign


def _otsu(values: FloatArray, bins: int = 128) -> float:
    """Otsu's threshold of ``values`` (maximises the between-class variance)."""
    hist, edges = np.histogram(values, bins=bins)
    p = hist.astype(np.float64) / max(int(hist.sum()), 1)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(p)
    m0 = np.cumsum(p * centres)
    total = m0[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (total * w0 - m0) ** 2 / (w0 * (1.0 - w0))
    between = np.nan_to_num(between[:-1], nan=0.0, posinf=0.0)
    return float(edges[int(np.argmax(between)) + 1])


def _clusters(points: FloatArray, k: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Colour clusters of ``(c, n)`` points: centres ``(k, c)``, per-channel spreads ``(k, c)``
    (with a noise floor) and the share of points in each; fitted on at most 1024 points."""
    step = max(1, points.shape[1] // _KMEANS_POINTS)
    sample = points[:, ::step]
    k = min(k, sample.shape[1])
    centres, assign = _kmeans(sample, k)
    share = (np.bincount(assign, minlength=k) / sample.shape[1]).astype(np.float32)
    spreads = np.full(centres.shape, _NOISE_FLOOR, dtype=np.float32)
    for j in range(k):
        members = sample[:, assign == j]
        if members.shape[1] > 1:
            spreads[j] = np.maximum(members.std(axis=1), _NOISE_FLOOR)
    return centres, spreads, share


def _distance_to(
    points: FloatArray, centres: FloatArray, spreads: FloatArray, which: IntArray
) -> tuple[FloatArray, IntArray]:
    """Per point of ``(c, n)``: distance to the nearest of the ``which`` clusters in units of its
    per-channel spreads (RMS over channels, so a typical member is at about 1), and its index."""
    channels, n = points.shape
    best = np.full(n, np.inf, dtype=np.float32)
    nearest = np.zeros(n, dtype=np.intp)
    for j in which:
        d2 = np.zeros(n, dtype=np.float32)
        for ch in range(channels):
            t = (points[ch] - centres[j, ch]) * np.float32(1.0 / spreads[j, ch])
            d2 += t * t
        closer = d2 < best
        best[closer] = d2[closer]
        nearest[closer] = j
    distance: FloatArray = np.sqrt(best / np.float32(channels))
    return distance, nearest


def _foreground_mask(features: FloatArray, ring_width: int) -> BoolArray:
    """Pixels unlike the background modelled from the border ring, cleaned up."""
    c, h, w = features.shape
    flat = features.reshape(c, -1)
    centres, spreads, share = _clusters(_border_ring(features, ring_width), _CLUSTERS)
    k = len(centres)
    # A border cluster that also fills the centre of the picture is the garment touching the
    # edge (photos are tightly framed), not background: drop it, unless it dominates the border.
    cy, cx = h // 2, w // 2
    centre = features[:, cy - h // 6 : cy + h // 6 + 1, cx - w // 6 : cx + w // 6 + 1].reshape(
        c, -1
    )
    c_dist, c_nearest = _distance_to(centre, centres, spreads, np.arange(k))
    centre_share = np.bincount(c_nearest[c_dist < _MIN_THRESHOLD], minlength=k) / centre.shape[1]
    garment_like = (centre_share >= _CENTRE_SHARE) & (share < _MAX_GARMENT_BORDER_SHARE)
    keep = (share >= _MIN_CLUSTER_SHARE) & ~garment_like
    if not keep.any():
        keep = share == share.max()
    background = np.flatnonzero(keep)
    distance = _distance_to(flat, centres, spreads, background)[0].reshape(h, w)
    top = float(np.percentile(distance, 99.5))
    if top <= _MIN_THRESHOLD:
        return np.zeros((h, w), dtype=bool)
    high = max(_otsu(np.minimum(distance, top).ravel()), _MIN_THRESHOLD)
    strong = distance > high
    weak = distance > max(_HYSTERESIS * high, _MIN_THRESHOLD)
    # Garment colours: clusters of the central box that are not background. A pixel nearer to
    # them than to the background is foreground even when it is close to a background colour.
    g_centres, g_spreads, g_share = _clusters(centre, _CLUSTERS)
    g_background = _distance_to(g_centres.T, centres, spreads, background)[0]
    garment = np.flatnonzero((g_share >= _GARMENT_MIN_SHARE) & (g_background >= _MIN_THRESHOLD))
    if len(garment):
        d_garment = _distance_to(flat, g_centres, g_spreads, garment)[0].reshape(h, w)
        weak |= (distance > _GARMENT_LOW) & (d_garment < distance)
        strong |= (d_garment < 1.0) & (distance > _MIN_THRESHOLD)
    labels, count = ndimage.label(weak)
    seeded = np.unique(labels[strong])
    mask: BoolArray = ndimage.binary_opening(np.isin(labels, seeded[seeded > 0]), iterations=2)
    mask = ndimage.binary_closing(mask, iterations=2) | mask
    labels, count = ndimage.label(mask)
    if count == 0:
        return mask
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    floor = max(_KEEP_RELATIVE * float(sizes.max()), _MIN_COMPONENT_SHARE * h * w)
    kept = np.flatnonzero(sizes >= floor) + 1
    mask = np.isin(labels, kept)
    filled: BoolArray = ndimage.binary_fill_holes(mask)
    return filled


def _resize_float(a: FloatArray, size: tuple[int, int]) -> FloatArray:
    """Resize a float image to ``size`` (width, height) with Lanczos (antialiased)."""
    image = Image.fromarray(np.ascontiguousarray(a, dtype=np.float32))
    out: FloatArray = np.asarray(image.resize(size, Image.Resampling.LANCZOS), dtype=np.float32)
    return out


def _place(
    crop: FloatArray, crop_mask: FloatArray, centering: Centering
) -> tuple[FloatArray, FloatArray]:
    """Resize so the longest side is 28 and pad to 28x28, centred as asked."""
    ch, cw = crop.shape
    scale = IMAGE_SIZE / max(ch, cw)
    nw, nh = max(1, round(cw * scale)), max(1, round(ch * scale))
    small = np.clip(_resize_float(crop, (nw, nh)), 0.0, 255.0)
    small_mask = np.clip(_resize_float(crop_mask, (nw, nh)), 0.0, 1.0)
    top, left = (IMAGE_SIZE - nh) // 2, (IMAGE_SIZE - nw) // 2
    if centering == "mass" and float(small.sum()) > 0:
        cy, cx = ndimage.center_of_mass(small)
        centre = (IMAGE_SIZE - 1) / 2
        top = int(np.clip(round(centre - cy), 0, IMAGE_SIZE - nh))
        left = int(np.clip(round(centre - cx), 0, IMAGE_SIZE - nw))
    out = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    out_mask = np.zeros_like(out)
    out[top : top + nh, left : left + nw] = small
    out_mask[top : top + nh, left : left + nw] = small_mask
    return out, out_mask


def _is_fashion_mnist(image: Image.Image) -> UInt8Array | None:
    """The pixels of a 28x28 grey image with a dark border, else None."""
    if image.size != (IMAGE_SIZE, IMAGE_SIZE):
        return None
    if image.mode == "RGB":
        rgb = np.asarray(image)
        if not (
            np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2])
        ):
            return None
        gray: UInt8Array = np.ascontiguousarray(rgb[..., 0])
    else:
        gray = np.asarray(image.convert("L")).copy()
    ring = _border_ring(gray.astype(np.float32), 1)
    if float(np.median(ring)) > FASHION_MNIST_BORDER_MAX:
        return None
    return gray


def _passthrough(gray: UInt8Array) -> PreprocessResult:
    background = float(np.median(_border_ring(gray.astype(np.float32), 1)))
    foreground = gray.astype(np.float32) > background + BLANK_RANGE
    bbox: tuple[int, int, int, int] | None = None
    if foreground.any():
        rows, cols = np.flatnonzero(foreground.any(axis=1)), np.flatnonzero(foreground.any(axis=0))
        bbox = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
    return PreprocessResult(
        pixels=gray,
        mode="fashion_mnist",
        inverted=False,
        bbox=bbox,
        background_level=background,
        foreground_fraction=float(foreground.mean()),
    )


def _preprocess(
    image: Image.Image,
    source_size: tuple[int, int],
    centering: Centering,
    segmentation: Segmentation = DEFAULT_SEGMENTATION,
) -> PreprocessResult:
    """Preprocess an oriented image whose full-resolution size was ``source_size``."""
    if segmentation not in SEGMENTATIONS:
        raise ValueError(f"segmentation must be one of {SEGMENTATIONS}, got {segmentation!r}")
    flat = _flatten(image)
    gray28 = _is_fashion_mnist(flat)
    if gray28 is not None and source_size == (IMAGE_SIZE, IMAGE_SIZE):
        return _passthrough(gray28)
    width, height = flat.size
    factor = WORK_SIZE / max(width, height)
    if factor < 1.0:
        work_size = (max(1, round(width * factor)), max(1, round(height * factor)))
        flat = flat.resize(work_size, Image.Resampling.BOX)
    pixels = np.asarray(flat, dtype=np.float32)
    if pixels.ndim == 2:
        lum = pixels
        features = pixels[None]
    else:
        lum = _luminance(pixels)
        r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
        features = np.stack([lum, r - g, (r + g) / 2 - b])
    h, w = lum.shape
    ring_width = max(1, round(_BORDER_FRACTION * min(h, w)))
    if min(h, w) > 2 * ring_width:
        mask = _foreground_mask(features, ring_width)
        if segmentation == "grabcut":
            from fmnist.serving.segmentation import refine_mask

            rgb = np.asarray(flat.convert("RGB") if flat.mode != "RGB" else flat)
            mask = refine_mask(rgb, mask)
    else:  # too small to have a border and an inside
        mask = np.zeros((h, w), dtype=bool)
    ring_lum = _border_ring(lum, ring_width)
    ring_mask = _border_ring(mask.astype(np.float32), ring_width) > 0.5
    background_values = ring_lum[~ring_mask] if (~ring_mask).any() else ring_lum
    background = float(np.median(background_values))
    fraction = float(mask.mean())
    if fraction == 0.0:
        return PreprocessResult(
            pixels=np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8),
            mode="photo",
            inverted=False,
            bbox=None,
            background_level=background,
            foreground_fraction=0.0,
            segmentation=segmentation,
        )
    inverted = float(np.median(lum[mask])) < background
    value = 255.0 - lum if inverted else lum
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    crop_mask = mask[top:bottom, left:right].astype(np.float32)
    crop = value[top:bottom, left:right] * crop_mask
    out, out_mask = _place(crop, crop_mask, centering)
    garment = out[out_mask > 0.5]
    high = float(np.percentile(garment, _STRETCH_PERCENTILE)) if garment.size else 0.0
    if high > 0:
        out = out * (255.0 / high)
    result = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    sx, sy = source_size[0] / w, source_size[1] / h
    bbox = (
        math.floor(left * sx),
        math.floor(top * sy),
        min(source_size[0], math.ceil(right * sx)),
        min(source_size[1], math.ceil(bottom * sy)),
    )
    return PreprocessResult(
        pixels=result,
        mode="photo",
        inverted=inverted,
        bbox=bbox,
        background_level=background,
        foreground_fraction=fraction,
        segmentation=segmentation,
    )


def preprocess_image(
    image: Image.Image,
    *,
    centering: Centering = "bbox",
    segmentation: Segmentation = DEFAULT_SEGMENTATION,
) -> PreprocessResult:
    """Make the 28x28 model input from an oriented image of any size and mode.

    A 28x28 grey image with a dark border passes through unchanged (mode ``fashion_mnist``);
    anything else is treated as a photo (see the module docstring), segmented with
    ``segmentation``. Never raises for a valid image: a uniform image gives an all-zero result
    with ``foreground_fraction`` 0.
    """
    return _preprocess(image, image.size, centering, segmentation)


def preprocess_bytes(
    data: bytes,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    centering: Centering = "bbox",
    segmentation: Segmentation = DEFAULT_SEGMENTATION,
) -> PreprocessResult:
    """Decode ``data`` (see :func:`decode_image`) and preprocess it (:func:`preprocess_image`).

    JPEGs are decoded at a reduced scale when they are much larger than the working size.
    Raises :class:`InvalidImageError` for data that is not a usable image.
    """
    image, source_size = _load_oriented(_open_checked(data, max_pixels), DRAFT_MIN_SIZE)
    return _preprocess(image, source_size, centering, segmentation)


# --------------------------------------------------------------------------------------------
# model input helpers


def png_bytes(pixels: npt.ArrayLike) -> bytes:
    """Encode a 2-D uint8 image (the 28x28 model input) as PNG, for "show what the model saw"."""
    a = np.asarray(pixels)
    if a.ndim != 2 or a.dtype != np.uint8:
        raise ValueError(f"expected a 2-D uint8 image, got shape {a.shape} and dtype {a.dtype}")
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(a)).save(buffer, format="PNG")
    return buffer.getvalue()


def _check_value(value: object, where: str, prefix: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        shown = repr(value) if len(repr(value)) <= 30 else f"a {type(value).__name__}"
        raise InvalidImageError(
            "invalid_instance", f"{prefix}{where}: expected a number in 0-255, got {shown}"
        )
    number = float(value)
    if math.isnan(number):
        raise InvalidImageError("invalid_instance", f"{prefix}{where}: expected a number, got NaN")
    if not 0.0 <= number <= 255.0:
        raise InvalidImageError(
            "invalid_instance", f"{prefix}{where}: {value!r} is outside the pixel range 0-255"
        )
    return number


def _instance_values(instance: object, prefix: str) -> list[float]:
    """The 784 values of a flat or nested instance, with a precise error for anything else."""
    expected = f"expected {IMAGE_SIZE * IMAGE_SIZE} values or {IMAGE_SIZE} rows of {IMAGE_SIZE}"
    if isinstance(instance, np.ndarray):
        instance = instance.tolist()
    if not isinstance(instance, list | tuple):
        raise InvalidImageError(
            "invalid_instance", f"{prefix}{expected}, got a {type(instance).__name__}"
        )
    if instance and all(isinstance(row, list | tuple) for row in instance):
        if len(instance) != IMAGE_SIZE:
            raise InvalidImageError(
                "invalid_instance", f"{prefix}{expected}, got {len(instance)} rows"
            )
        values: list[float] = []
        for r, row in enumerate(instance):
            if len(row) != IMAGE_SIZE:
                raise InvalidImageError(
                    "invalid_instance",
                    f"{prefix}{expected}, got {len(row)} values in row {r}",
                )
            values.extend(
                _check_value(v, f"row {r}, column {c}", prefix) for c, v in enumerate(row)
            )
        return values
    if any(isinstance(row, list | tuple) for row in instance):
        raise InvalidImageError(
            "invalid_instance", f"{prefix}{expected}, got a mix of rows and single values"
        )
    if len(instance) != IMAGE_SIZE * IMAGE_SIZE:
        raise InvalidImageError(
            "invalid_instance", f"{prefix}{expected}, got {len(instance)} values"
        )
    return [_check_value(v, f"value {i}", prefix) for i, v in enumerate(instance)]


def _has_bool(instance: object) -> bool:
    """Whether a list (of lists) holds booleans, which numpy would silently turn into 0/1."""
    if not isinstance(instance, list | tuple):
        return False
    for item in instance:
        if isinstance(item, list | tuple):
            if any(isinstance(v, bool | np.bool_) for v in item):
                return True
        elif isinstance(item, bool | np.bool_):
            return True
    return False


def pixels_from_instance(instance: object, *, index: int | None = None) -> UInt8Array:
    """Validate a JSON instance (28 rows of 28, or 784 numbers, in 0-255) into uint8 28x28.

    Floats are rounded to the nearest integer. Raises :class:`InvalidImageError` (kind
    ``invalid_instance``) naming the instance ``index`` (when given) and the offending place.
    """
    prefix = f"instance {index}: " if index is not None else "instance: "
    a = None
    try:
        a = np.asarray(instance)
    except (ValueError, TypeError):
        a = None
    if (
        a is not None
        and a.shape in ((IMAGE_SIZE * IMAGE_SIZE,), (IMAGE_SIZE, IMAGE_SIZE))
        and a.dtype.kind in "iuf"
        and bool(np.isfinite(a).all())
        and float(a.min()) >= 0.0
        and float(a.max()) <= 255.0
        and not _has_bool(instance)
    ):
        values: npt.NDArray[np.generic] = a
    else:  # the slow path finds and names the problem
        values = np.asarray(_instance_values(instance, prefix), dtype=np.float64)
    pixels: UInt8Array = np.rint(values).astype(np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE)
    return pixels
