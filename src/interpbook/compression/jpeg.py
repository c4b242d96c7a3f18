"""JPEG, the classical codec of the chapter: a round trip through Pillow's libjpeg, with the bits it spent.

At the 32–64 pixel sizes of the book's ci scale a JPEG file is mostly header (quantisation and Huffman
tables, about 600 bytes: 1.2 bits per pixel on a 64×64 image). ``jpeg_roundtrip`` therefore reports, by
default, the bits of the entropy-coded scan only, the part that grows with the image; pass
``count_header=True`` for the whole file, which is what the paper measures on 768×512 Kodak images where
the header is negligible.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass
class CodecOutput:
    """A batch through a codec: reconstructions ``x_hat: [B, C, H, W]`` and bits per pixel ``bpp: [B]``."""

    x_hat: Tensor
    bpp: Tensor


def _scan_bytes(data: bytes) -> int:
    """Bytes of a baseline JPEG after its start-of-scan header, up to (not counting) the end-of-image marker."""
    sos = data.find(b"\xff\xda")
    if sos < 0:
        raise ValueError("not a baseline JPEG stream: no start-of-scan marker")
    header_length = int.from_bytes(data[sos + 2:sos + 4], "big")
    return len(data) - (sos + 2 + header_length) - 2


def jpeg_roundtrip(x: Tensor, quality: int, *, count_header: bool = False) -> CodecOutput:
    """Encode and decode every image of ``x: [B, C, H, W]`` (C = 1 or 3, values in [0, 1]) as JPEG.

    Pixels are rounded to 8 bits; Pillow's defaults otherwise (4:2:0 chroma subsampling for colour).
    Pillow codes one image per call, so this loops over the batch. Returns reconstructions on ``x``'s
    device and dtype and bits per pixel (scan bytes only unless ``count_header``).

    >>> out = jpeg_roundtrip(torch.rand(2, 3, 32, 32), quality=50)
    >>> out.x_hat.shape, out.bpp.shape
    (torch.Size([2, 3, 32, 32]), torch.Size([2]))
    """
    from PIL import Image

    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"x must be [B, C, H, W] with C in (1, 3), got {tuple(x.shape)}")
    if isinstance(quality, bool) or int(quality) != quality or not 1 <= quality <= 95:
        raise ValueError(f"quality must be an integer in 1..95 (Pillow's useful range), got {quality!r}")
    b, c, h, w = x.shape
    pixels = (x.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    decoded, bits = [], []
    for img in pixels:
        buf = io.BytesIO()
        Image.fromarray(img[..., 0] if c == 1 else img).save(buf, format="JPEG", quality=int(quality))
        data = buf.getvalue()
        bits.append(8 * (len(data) if count_header else _scan_bytes(data)))
        rec = np.asarray(Image.open(io.BytesIO(data)).convert("L" if c == 1 else "RGB"))
        decoded.append(rec.reshape(h, w, c))
    x_hat = torch.from_numpy(np.stack(decoded)).permute(0, 3, 1, 2).to(x.device, x.dtype) / 255
    return CodecOutput(x_hat, torch.tensor(bits, dtype=torch.float64, device=x.device) / (h * w))
