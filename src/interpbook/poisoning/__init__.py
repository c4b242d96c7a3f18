"""Data poisoning: backdoor triggers written into training tiles, and the attack success they buy.

Modules: ``backdoor`` (spectral patch triggers — an RGB tarp and an NIR-only patch —, poisoning a fraction
of a segmentation training set with a target relabelling, attack success rate).
"""

from interpbook.poisoning.backdoor import (
    RELABEL_MODES,
    PoisonedData,
    Trigger,
    apply_trigger,
    attack_success_rate,
    attacked_pixels,
    backdoor_success,
    nir_trigger,
    poison,
    rgb_trigger,
    trigger_mask,
    trigger_positions,
)

__all__ = [
    "RELABEL_MODES",
    "PoisonedData",
    "Trigger",
    "apply_trigger",
    "attack_success_rate",
    "attacked_pixels",
    "backdoor_success",
    "nir_trigger",
    "poison",
    "rgb_trigger",
    "trigger_mask",
    "trigger_positions",
]
