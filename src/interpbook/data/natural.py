"""Natural photographs that ship inside the scikit-image and scikit-learn wheels, and patch samplers.

No network: ``skimage.data`` bundles a handful of colour photographs (astronaut, coffee, chelsea, rocket,
the Hubble deep field, an immunohistochemistry slide, ...) and ``sklearn.datasets.load_sample_images``
two more (china, flower). They stand in for the CLIC / Kodak photographs of compression papers.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry",
                  "retina", "colorwheel")
SKLEARN_PHOTOS = ("china", "flower")
TRAIN_PHOTOS = ("astronaut", "coffee", "rocket", "hubble_deep_field", "china")  # the codec's training images
TEST_PHOTOS = ("chelsea", "immunohistochemistry", "flower")  # held out


def natural_image(name: str, scale: float = 1.0) -> Tensor:
    """One bundled RGB photograph as ``[3, H, W]`` float32 in [0, 1], optionally resized by ``scale``.

    Resizing uses Pillow's Lanczos filter (antialiased), so ``scale=0.5`` halves the resolution the way a
    dataset's preprocessing would.
    """
    from PIL import Image

    if name in SKLEARN_PHOTOS:
        from sklearn.datasets import load_sample_images

        bunch = load_sample_images()
        arr = bunch.images[[f.split("/")[-1].split(".")[0] for f in bunch.filenames].index(name)]
    elif name in SKIMAGE_PHOTOS:
        import skimage.data

        arr = getattr(skimage.data, name)()
    else:
        raise ValueError(f"unknown photograph {name!r}; available: {', '.join(SKIMAGE_PHOTOS + SKLEARN_PHOTOS)}")
    if not 0 < scale <= 1:
        raise ValueError(f"scale must be in (0, 1], got {scale}")
    img = Image.fromarray(np.ascontiguousarray(arr[..., :3]))
    if scale != 1:
        img = img.resize((max(round(img.width * scale), 1), max(round(img.height * scale), 1)), Image.LANCZOS)
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255).permute(2, 0, 1).contiguous()


def natural_images(names=TRAIN_PHOTOS, scale: float = 1.0) -> list[Tensor]:
    """Several photographs (``[3, H_i, W_i]`` each; sizes differ)."""
    return [natural_image(n, scale) for n in names]


def random_patches(images: list[Tensor], n: int, size: int, *, seed: int = 0, device=None) -> Tensor:
    """``n`` random ``size × size`` crops, images drawn uniformly, positions uniform: ``[n, 3, size, size]``.

    Crops are cut with one gather per source image (no Python loop over patches).
    """
    if not images or any(min(im.shape[-2:]) < size for im in images):
        raise ValueError(f"every image must be at least {size} pixels per side")
    gen = torch.Generator().manual_seed(seed)
    which = torch.randint(len(images), (n,), generator=gen)
    out = torch.empty(n, 3, size, size)
    offs = torch.arange(size)
    for k, im in enumerate(images):
        idx = (which == k).nonzero().flatten()
        if not len(idx):
            continue
        h, w = im.shape[-2:]
        top = torch.randint(h - size + 1, (len(idx),), generator=gen)
        left = torch.randint(w - size + 1, (len(idx),), generator=gen)
        rows = (top[:, None] + offs)[:, :, None]  # [m, size, 1]
        cols = (left[:, None] + offs)[:, None, :]  # [m, 1, size]
        out[idx] = im[:, rows, cols].permute(1, 0, 2, 3)
    return out.to(device) if device is not None else out


def center_crops(images: list[Tensor], size: int, per_image: int = 1) -> Tensor:
    """Non-overlapping ``size × size`` tiles nearest each image's centre: ``[len(images)·per_image, 3, size, size]``.

    Tiles come from the largest centred grid that fits; the ``per_image`` tiles closest to the centre are kept.
    """
    crops = []
    for im in images:
        h, w = im.shape[-2:]
        gh, gw = h // size, w // size
        if gh * gw < per_image:
            raise ValueError(f"an image of {h}×{w} holds only {gh * gw} tiles of {size}, asked for {per_image}")
        top, left = (h - gh * size) // 2, (w - gw * size) // 2
        centre = torch.tensor([(gh - 1) / 2, (gw - 1) / 2])
        cells = torch.cartesian_prod(torch.arange(gh), torch.arange(gw)).float()
        order = ((cells - centre) ** 2).sum(1).argsort(stable=True)[:per_image]
        for r, c in cells[order].long().tolist():
            crops.append(im[:, top + r * size: top + (r + 1) * size, left + c * size: left + (c + 1) * size])
    return torch.stack(crops)
