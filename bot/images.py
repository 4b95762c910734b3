"""One place that makes a customer's image safe to keep and to show.

`clean_image` is the gate: Pillow decides what the bytes are (never the declared Content-Type or a
file name), only JPEG, PNG and WebP pass, and the pixel count is checked before any pixel is
decoded (decompression bombs). What is kept is re-encoded from the pixels alone, upright (the EXIF
orientation applied) and at most `max_side` on its longer side, so no metadata survives: no EXIF
(GPS included), XMP, ICC profile, comment or PNG text chunk.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

# Pillow format -> (the content type it is served with, the modes it is re-encoded in)
FORMATS: dict[str, tuple[str, tuple[str, ...]]] = {
    "JPEG": ("image/jpeg", ("L", "RGB")),
    "PNG": ("image/png", ("L", "LA", "RGB", "RGBA")),
    "WEBP": ("image/webp", ("RGB", "RGBA")),
}
CONTENT_TYPES = frozenset(content_type for content_type, _ in FORMATS.values())
JPEG_QUALITY = 85
WEBP_QUALITY = 85
# What Pillow raises on data that is not what its header says (truncated, corrupt, inconsistent).
_BROKEN = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, ZeroDivisionError,
           MemoryError)


class ImageRejected(ValueError):
    """An image that is not kept; `code` is the API error code (unsupported_image_type,
    invalid_image, image_too_large)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail


@dataclass(frozen=True)
class CleanImage:
    data: bytes
    content_type: str
    width: int
    height: int


def clean_image(data: bytes, max_pixels: int, max_side: int) -> CleanImage:
    """The image in `data` re-encoded from its pixels, or ImageRejected."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        image = _open(data, max_pixels)
        try:
            return _reencode(image, max_side)
        finally:
            image.close()


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """Open with the three accepted decoders only, check the size, then decode the pixels."""
    try:
        image = Image.open(io.BytesIO(data), formats=list(FORMATS))
    except Image.DecompressionBombError as exc:
        raise ImageRejected("image_too_large", f"images are limited to {max_pixels} pixels") from exc
    except UnidentifiedImageError as exc:
        raise ImageRejected(*_unidentified(data)) from exc
    except _BROKEN as exc:
        raise ImageRejected("invalid_image", "the image data is damaged") from exc
    try:
        if image.format not in FORMATS:
            raise ImageRejected("unsupported_image_type", "send a JPEG, PNG or WebP image")
        width, height = image.size
        if width <= 0 or height <= 0:
            raise ImageRejected("invalid_image", "the image has no pixels")
        if width * height > max_pixels:
            raise ImageRejected("image_too_large", f"images are limited to {max_pixels} pixels")
        image.seek(0)  # an animation (WebP, APNG): its first frame is the picture
        image.load()
    except ImageRejected:
        image.close()
        raise
    except Image.DecompressionBombError as exc:
        image.close()
        raise ImageRejected("image_too_large", f"images are limited to {max_pixels} pixels") from exc
    except _BROKEN as exc:  # truncated or corrupt: Pillow never guesses the missing pixels
        image.close()
        raise ImageRejected("invalid_image", "the image data is damaged or incomplete") from exc
    return image


def _unidentified(data: bytes) -> tuple[str, str]:
    """Why bytes that none of the three decoders take are refused: another image format Pillow
    knows (by its header alone, nothing decoded), or not an image at all."""
    try:
        with Image.open(io.BytesIO(data)) as other:
            return "unsupported_image_type", f"{other.format} images are not accepted; send JPEG, PNG or WebP"
    except Exception:
        return "invalid_image", "the data is not an image"


def _reencode(image: Image.Image, max_side: int) -> CleanImage:
    """Upright, scaled down, pixels only, encoded again in the format it came in."""
    fmt = image.format or ""
    content_type, modes = FORMATS[fmt]
    try:
        upright = ImageOps.exif_transpose(image) or image
    except _BROKEN:  # an EXIF block that cannot be read: the image as it is stored
        upright = image
    try:
        if upright.mode not in modes:
            alpha = "RGBA" in modes and upright.has_transparency_data
            upright = upright.convert("RGBA" if alpha else "RGB")
        if max(upright.size) > max_side:
            upright = upright.copy()
            upright.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        # A new image from the raw pixels: no info dict, no EXIF, no ICC profile, no text chunk.
        pixels = Image.frombytes(upright.mode, upright.size, upright.tobytes())
    except _BROKEN as exc:
        raise ImageRejected("invalid_image", "the image data is damaged") from exc
    out = io.BytesIO()
    if fmt == "JPEG":
        pixels.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    elif fmt == "PNG":
        pixels.save(out, "PNG")
    else:
        pixels.save(out, "WEBP", quality=WEBP_QUALITY)
    return CleanImage(out.getvalue(), content_type, pixels.width, pixels.height)
