"""Adversarial attacks. One verb for the family: ``perturb(model, x, y, *, norm, eps, ...)``.

- :mod:`interpbook.attacks.pgd`: PGD in lp balls (inf, 2, 1 with SLIDE or steepest steps), optionally in
  a coordinate subspace, batched with per-example budgets.
- :mod:`interpbook.attacks.transfer`: the sign-gradient transfer family (FGSM, I-FGSM, MI/NI, DI, TI, SI),
  ensembles, ILA and a perturbation generator, with fooling rates and transfer matrices (Gu et al., 2023).
- :mod:`interpbook.attacks.subspace`: subspace masks, success grids, minimal budgets, the linear closed
  form and the collapse fit of Godfrey et al. (2023).
"""

from interpbook.attacks.pgd import (
    dual_exponent,
    lp_norm,
    parse_norm,
    perturb,
    project_l1_ball,
    project_lp_ball,
)
from interpbook.attacks.subspace import (
    CollapseFit,
    collapse_fit,
    is_adversarial,
    linear_max_change,
    loglog_slope,
    max_violation,
    minimal_epsilon,
    patch_masks,
    pixel_masks,
    success_grid,
)
from interpbook.attacks.transfer import (
    ATTACKS,
    Ensemble,
    attack,
    fooling_rate,
    ila,
    off_diagonal_mean,
    rates,
    sign_attack,
    train_generator,
    transfer_matrix,
    transfer_outcomes,
)

__all__ = [
    "attack", "ATTACKS", "collapse_fit", "CollapseFit", "dual_exponent", "Ensemble", "fooling_rate", "ila",
    "is_adversarial", "linear_max_change", "loglog_slope", "lp_norm", "max_violation", "minimal_epsilon",
    "off_diagonal_mean", "parse_norm", "patch_masks", "perturb", "pixel_masks", "project_l1_ball", "project_lp_ball",
    "rates", "sign_attack", "success_grid", "train_generator", "transfer_matrix", "transfer_outcomes",
]
