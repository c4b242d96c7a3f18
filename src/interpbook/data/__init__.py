"""Datasets that load offline: procedural generators and data shipped inside PyPI wheels.

Chess puzzles live in :mod:`interpbook.data.chess_puzzles` (it imports the ``chess`` package)."""

from interpbook.data.images import ImageSplit, digits
from interpbook.data.language import SynthLanguage, subsequence_task, unigram_entropy
from interpbook.data.multispectral import (
    BANDS,
    MATERIALS,
    REFLECTANCE,
    SceneConfig,
    Scenes,
    band_means,
    class_band_means,
    corrupt_bands,
    multispectral_scenes,
)
from interpbook.data.natural import center_crops, natural_image, natural_images, random_patches
from interpbook.data.reasoning import mazes, prefix_sums

__all__ = [
    "BANDS", "MATERIALS", "REFLECTANCE", "ImageSplit", "SceneConfig", "Scenes", "SynthLanguage", "band_means",
    "center_crops", "class_band_means", "corrupt_bands", "digits", "mazes", "multispectral_scenes", "natural_image",
    "natural_images", "prefix_sums", "random_patches", "subsequence_task", "unigram_entropy",
]
