"""Image corruptions in the style of ImageNet-C (Hendrycks & Dietterich, 2019), written in torch.

Every corruption takes a batch ``x: [B, C, H, W]`` in [0, 1], a ``severity`` in 1..5 and a
``seed`` (corruptions with randomness are deterministic for a seed), and returns a tensor of the same
shape, dtype and device, clipped to [0, 1]. ``corrupt(x, name, severity, seed)`` dispatches by name.

Modules: ``imagenet_c`` (noise, blur, digital and the registry), ``weather`` (snow, frost, fog),
``bands`` (frequency-band corruptions).
"""

from interpbook.corruptions.imagenet_c import (
    CORRUPTION_GROUPS,
    CORRUPTIONS,
    SEVERITIES,
    available_corruptions,
    brightness,
    contrast,
    corrupt,
    defocus_blur,
    elastic_transform,
    gaussian_noise,
    glass_blur,
    impulse_noise,
    jpeg_compression,
    motion_blur,
    pixelate,
    register_corruption,
    shot_noise,
    zoom_blur,
)
from interpbook.corruptions.weather import WEATHER, fog, haze, snow

__all__ = [
    "CORRUPTIONS",
    "CORRUPTION_GROUPS",
    "WEATHER",
    "SEVERITIES",
    "available_corruptions",
    "brightness",
    "contrast",
    "corrupt",
    "defocus_blur",
    "elastic_transform",
    "fog",
    "gaussian_noise",
    "glass_blur",
    "haze",
    "impulse_noise",
    "jpeg_compression",
    "motion_blur",
    "pixelate",
    "register_corruption",
    "shot_noise",
    "snow",
    "zoom_blur",
]
