"""Datasets that load offline: procedural generators and data shipped inside PyPI wheels.

Chess puzzles live in :mod:`interpbook.data.chess_puzzles` (it imports the ``chess`` package)."""

from interpbook.data.images import ImageSplit, digits
from interpbook.data.language import SynthLanguage, subsequence_task, unigram_entropy
from interpbook.data.natural import center_crops, natural_image, natural_images, random_patches
from interpbook.data.reasoning import mazes, prefix_sums

__all__ = ["ImageSplit", "SynthLanguage", "center_crops", "digits", "mazes", "natural_image", "natural_images",
           "prefix_sums", "random_patches", "subsequence_task", "unigram_entropy"]
