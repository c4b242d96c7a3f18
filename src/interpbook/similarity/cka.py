"""Centred kernel alignment (CKA) and the Hilbert-Schmidt independence criterion (HSIC).

Context. Two networks (or two layers) represent the same ``n`` examples as ``X`` ``[n, d_x]`` and ``Y``
``[n, d_y]``. Comparing them neuron by neuron fails because nothing ties neuron ``i`` of one to neuron ``i`` of
the other. CKA (Kornblith et al., 2019) compares instead the *example-by-example similarity structure*: with
kernels ``K_ij = k(x_i, x_j)`` and ``L_ij = l(y_i, y_j)`` and the centring matrix ``H = I - 11^T / n``,

    HSIC(K, L) = tr(K H L H) / (n - 1)^2,          CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)).

For the linear kernel ``K = X X^T`` and column-centred ``X``, ``Y`` the ``n x n`` products collapse to
``d x d`` ones, because ``tr(X X^T Y Y^T) = ||X^T Y||_F^2``:

    linear CKA(X, Y) = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F).

This *feature form* costs ``O(n d^2)`` time and ``O(d^2)`` memory where the Gram form costs ``O(n^2 d)`` and
``O(n^2)``: for 10k tokens x 512 features it is the difference between a 512 x 512 and a 10k x 10k matrix.
Linear CKA is invariant to orthogonal transforms and isotropic scaling of either side, not to general
invertible linear maps (that is CCA's invariance). The RBF kernel ``exp(-||x_i - x_j||^2 / (2 sigma^2))`` uses
the median heuristic of Kornblith et al.: ``sigma = threshold * median distance``.

The biased estimator above converges slowly when ``d`` is large against ``n``. The unbiased estimator of
Song et al. (2012), with ``K~``, ``L~`` the Gram matrices with their diagonals set to zero, is

    HSIC_1(K, L) = [tr(K~ L~) + (1^T K~ 1)(1^T L~ 1) / ((n-1)(n-2)) - 2/(n-2) 1^T K~ L~ 1] / (n (n-3)),

and "debiased CKA" replaces each HSIC by HSIC_1. Because HSIC_1 is unbiased, it can be *averaged over
minibatches*: Nguyen, Raghu & Kornblith (2021) estimate CKA on activations too large to hold at once as

    CKA_minibatch = mean_b HSIC_1(K_b, L_b) / sqrt(mean_b HSIC_1(K_b, K_b) mean_b HSIC_1(L_b, L_b)),

which is what :class:`MinibatchCKA` accumulates, for a whole layer x layer grid at once.
"""

from __future__ import annotations

import torch
from torch import Tensor

from interpbook.similarity._common import as_representation, center, check_choice, check_pair

FORMS = ("auto", "feature", "gram")
MEDIANS = ("all", "pairs")


# ----------------------------------------------------------------------------------------------- kernels
def gram_linear(x: Tensor) -> Tensor:
    """Linear-kernel Gram matrix ``X X^T``: ``[..., n, d]`` -> ``[..., n, n]`` (no centring), in float64."""
    x = as_representation(x, "x", min_rows=1)
    return x @ x.mT


def _median(v: Tensor) -> Tensor:
    """Median along the last dimension, averaging the two middle values for an even count (numpy's rule)."""
    m = v.shape[-1]
    lo = v.kthvalue((m + 1) // 2, dim=-1).values
    hi = v.kthvalue(m // 2 + 1, dim=-1).values
    return (lo + hi) / 2


def squared_distances(x: Tensor) -> Tensor:
    """Pairwise squared Euclidean distances between rows: ``[..., n, d]`` -> ``[..., n, n]``, zero diagonal."""
    x = center(as_representation(x, "x", min_rows=1))  # centring first limits cancellation
    sq_norms = (x * x).sum(-1)
    sq = (sq_norms.unsqueeze(-1) + sq_norms.unsqueeze(-2) - 2 * (x @ x.mT)).clamp_min(0)
    return sq * (1 - torch.eye(sq.shape[-1], dtype=sq.dtype, device=sq.device))


def gram_rbf(x: Tensor, threshold: float = 1.0, *, sigma: float | None = None, median: str = "all") -> Tensor:
    """RBF-kernel Gram matrix ``exp(-||x_i - x_j||^2 / (2 sigma^2))``, ``[..., n, d]`` -> ``[..., n, n]``.

    Args:
        x: representation ``[..., n, d]``.
        threshold: bandwidth as a fraction of the median distance (Kornblith et al. use 0.2 to 2; 1 by default).
        sigma: a fixed bandwidth; overrides the median heuristic when given.
        median: which distances the median is taken over. ``"all"``: every entry of the ``n x n`` squared
            distance matrix, zeros of the diagonal included, as the released code of Kornblith et al. does;
            ``"pairs"``: the ``n (n-1) / 2`` distinct pairs only (the paper's wording). They agree as ``n`` grows.

    Returns:
        The Gram matrix ``[..., n, n]``, with ``sigma^2 = threshold^2 * median(squared distances)``.
    """
    check_choice(median, "median", MEDIANS)
    sq = squared_distances(x)
    if sigma is not None:
        if not sigma > 0:
            raise ValueError(f"sigma must be > 0, got {sigma!r}")
        sigma2 = torch.as_tensor(sigma**2, dtype=sq.dtype, device=sq.device)
    else:
        if not threshold > 0:
            raise ValueError(f"threshold must be > 0, got {threshold!r}")
        n = sq.shape[-1]
        if median == "all":
            values = sq.flatten(-2)
        else:
            iu = torch.triu_indices(n, n, offset=1, device=sq.device)
            values = sq[..., iu[0], iu[1]]
        med = _median(values)
        if bool((med <= 0).any()):
            raise ValueError("the median squared distance is 0 (most examples coincide); pass sigma explicitly")
        sigma2 = threshold**2 * med.unsqueeze(-1).unsqueeze(-1)
    return torch.exp(-sq / (2 * sigma2))


def center_gram(k: Tensor) -> Tensor:
    """Double-centre a Gram matrix: ``H K H`` with ``H = I - 11^T / n`` (row, column and grand means removed)."""
    return k - k.mean(-1, keepdim=True) - k.mean(-2, keepdim=True) + k.mean((-2, -1), keepdim=True)


# ------------------------------------------------------------------------------------------- HSIC, Gram form
def _check_grams(k, l, unbiased: bool) -> tuple[Tensor, Tensor]:
    k = as_representation(k, "k", min_rows=1)
    l = as_representation(l, "l", min_rows=1)
    for name, g in (("k", k), ("l", l)):
        if g.shape[-1] != g.shape[-2]:
            raise ValueError(f"{name} must be a square Gram matrix [..., n, n]; got shape {tuple(g.shape)}")
    if k.shape[-1] != l.shape[-1]:
        raise ValueError(f"k and l must be Gram matrices of the same n examples; got {tuple(k.shape)} and "
                         f"{tuple(l.shape)}")
    if k.device != l.device:
        raise ValueError(f"k is on {k.device} and l on {l.device}; put both on one device")
    n = k.shape[-1]
    if n < (4 if unbiased else 2):
        raise ValueError(f"{'unbiased' if unbiased else 'biased'} HSIC needs n >= {4 if unbiased else 2} "
                         f"examples, got n = {n}")
    return k, l


def hsic(k: Tensor, l: Tensor, *, unbiased: bool = False) -> Tensor:
    """HSIC between two (symmetric) Gram matrices ``[..., n, n]`` -> ``[...]``.

    Args:
        k, l: Gram matrices of the same ``n`` examples (leading batch dimensions broadcast).
        unbiased: ``False``: Gretton et al.'s ``tr(K H L H) / (n-1)^2``; ``True``: Song et al.'s unbiased
            ``HSIC_1`` (module docstring), which needs ``n >= 4`` and may be negative.
    """
    k, l = _check_grams(k, l, unbiased)
    n = k.shape[-1]
    if not unbiased:
        return (center_gram(k) * l).sum((-2, -1)) / (n - 1) ** 2
    off = 1 - torch.eye(n, dtype=k.dtype, device=k.device)
    k, l = k * off, l * off  # K~, L~: zero diagonals
    row_k, row_l = k.sum(-1), l.sum(-1)  # K~ 1, L~ 1: [..., n]
    t1 = (k * l).sum((-2, -1))  # tr(K~ L~) for symmetric K~, L~
    t2 = row_k.sum(-1) * row_l.sum(-1) / ((n - 1) * (n - 2))
    t3 = 2 / (n - 2) * (row_k * row_l).sum(-1)  # 1^T K~ L~ 1
    return (t1 + t2 - t3) / (n * (n - 3))


def kernel_cka(k: Tensor, l: Tensor, *, debiased: bool = False) -> Tensor:
    """CKA from two Gram matrices ``[..., n, n]`` -> ``[...]``: ``HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))``.

    With ``debiased=True`` every HSIC is the unbiased ``HSIC_1`` (Kornblith et al.'s "debiased CKA"); for
    small ``n`` the denominator can then be non-positive, and the result NaN.
    """
    xy = hsic(k, l, unbiased=debiased)
    return xy / (hsic(k, k, unbiased=debiased) * hsic(l, l, unbiased=debiased)).sqrt()


# ---------------------------------------------------------------------------------------- HSIC, feature form
def _linear_hsic_features(x: Tensor, y: Tensor, unbiased: bool) -> Tensor:
    """HSIC of the linear kernels of ``x``, ``y`` ``[..., n, d]`` without forming any ``n x n`` matrix.

    Biased: ``||Xc^T Yc||_F^2 / (n-1)^2``. Unbiased: the three terms of HSIC_1 for ``K = X X^T``:
    ``tr(K~ L~) = ||X^T Y||_F^2 - sum_i ||x_i||^2 ||y_i||^2``, ``K~ 1 = X (X^T 1) - (||x_i||^2)_i``.
    HSIC_1 is exactly invariant to translating the features, so the inputs are centred (for accuracy) first.
    """
    n = x.shape[-2]
    x, y = center(x), center(y)
    cross = (x.mT @ y).square().sum((-2, -1))  # ||X^T Y||_F^2, a d_x x d_y product
    if not unbiased:
        return cross / (n - 1) ** 2
    sx, sy = (x * x).sum(-1), (y * y).sum(-1)  # diag(K), diag(L): [..., n]
    row_k = x @ x.sum(-2, keepdim=True).mT - sx.unsqueeze(-1)  # K~ 1 = X (X^T 1) - diag K: [..., n, 1]
    row_l = y @ y.sum(-2, keepdim=True).mT - sy.unsqueeze(-1)
    t1 = cross - (sx * sy).sum(-1)
    t2 = row_k.sum((-2, -1)) * row_l.sum((-2, -1)) / ((n - 1) * (n - 2))
    t3 = 2 / (n - 2) * (row_k * row_l).sum((-2, -1))
    return (t1 + t2 - t3) / (n * (n - 3))


def linear_hsic(x: Tensor, y: Tensor, *, unbiased: bool = False) -> Tensor:
    """HSIC of the linear kernels of ``x`` ``[..., n, d_x]`` and ``y`` ``[..., n, d_y]``, in feature form.

    Equal to ``hsic(gram_linear(x), gram_linear(y), unbiased=...)`` but ``O(n d^2)``, never ``n x n``.
    Returns ``[...]``.
    """
    x, y = check_pair(x, y, min_rows=4 if unbiased else 2)
    return _linear_hsic_features(x, y, unbiased)


def linear_cka(x: Tensor, y: Tensor, *, debiased: bool = False, form: str = "auto") -> Tensor:
    """Linear CKA between ``x`` ``[..., n, d_x]`` and ``y`` ``[..., n, d_y]`` -> ``[...]``, in float64.

    Args:
        x, y: representations of the same ``n`` examples (leading batch dimensions broadcast).
        debiased: use the unbiased HSIC_1 estimator (needs ``n >= 4``).
        form: ``"feature"`` (``d x d`` products, ``O(n d^2)``), ``"gram"`` (``n x n`` Gram matrices) or
            ``"auto"``: the feature form whenever ``max(d_x, d_y) <= n``, which is when it is the cheaper.

    Returns:
        CKA in ``[0, 1]`` for the biased estimator; 1 for identical inputs.

    Example:
        >>> x = torch.randn(1000, 64)
        >>> q, _ = torch.linalg.qr(torch.randn(64, 64))
        >>> round(float(linear_cka(x, 3 * x @ q)), 6)  # invariant to rotation and scaling
        1.0
    """
    check_choice(form, "form", FORMS)
    x, y = check_pair(x, y, min_rows=4 if debiased else 2)
    n = x.shape[-2]
    if form == "gram" or (form == "auto" and max(x.shape[-1], y.shape[-1]) > n):
        xc, yc = center(x), center(y)
        return kernel_cka(xc @ xc.mT, yc @ yc.mT, debiased=debiased)
    xy = _linear_hsic_features(x, y, debiased)
    return xy / (_linear_hsic_features(x, x, debiased) * _linear_hsic_features(y, y, debiased)).sqrt()


def rbf_cka(x: Tensor, y: Tensor, threshold: float = 1.0, *, debiased: bool = False, median: str = "all") -> Tensor:
    """RBF-kernel CKA with the median-distance bandwidth of :func:`gram_rbf` (``O(n^2)`` memory by nature).

    Returns ``[...]``; see :func:`gram_rbf` for ``threshold`` and ``median``.
    """
    x, y = check_pair(x, y, min_rows=4 if debiased else 2)
    return kernel_cka(gram_rbf(x, threshold, median=median), gram_rbf(y, threshold, median=median),
                      debiased=debiased)


# --------------------------------------------------------------------------------------------- minibatch CKA
def _hsic1_grid(k: Tensor, l: Tensor) -> Tensor:
    """Unbiased HSIC between every pair of stacked Gram matrices: ``k`` ``[A, m, m]``, ``l`` ``[B, m, m]`` ->
    ``[A, B]`` (the same three terms as :func:`hsic`, each an einsum or a matrix product over the grid)."""
    m = k.shape[-1]
    off = 1 - torch.eye(m, dtype=k.dtype, device=k.device)
    k, l = k * off, l * off
    row_k, row_l = k.sum(-1), l.sum(-1)  # [A, m], [B, m]
    t1 = torch.einsum("aij,bij->ab", k, l)
    t2 = torch.outer(row_k.sum(-1), row_l.sum(-1)) / ((m - 1) * (m - 2))
    t3 = 2 / (m - 2) * row_k @ row_l.T
    return (t1 + t2 - t3) / (m * (m - 3))


def _diag_hsic1(k: Tensor) -> Tensor:
    """``HSIC_1(K_a, K_a)`` for each of the stacked Gram matrices ``[A, m, m]`` -> ``[A]``."""
    m = k.shape[-1]
    k = k * (1 - torch.eye(m, dtype=k.dtype, device=k.device))
    row = k.sum(-1)
    t1 = (k * k).sum((-2, -1))
    t2 = row.sum(-1) ** 2 / ((m - 1) * (m - 2))
    t3 = 2 / (m - 2) * (row * row).sum(-1)
    return (t1 + t2 - t3) / (m * (m - 3))


class MinibatchCKA:
    """Minibatch linear CKA of Nguyen, Raghu & Kornblith (2021), accumulated over batches.

    Each :meth:`update` takes one minibatch of ``m`` examples as seen by a list of layers of model A and a
    list of layers of model B (flattened to ``[m, d_layer]``), forms their ``m x m`` linear Gram matrices,
    and adds the unbiased ``HSIC_1`` of every (A layer, B layer) pair to running sums; :meth:`compute` returns
    the ``[len(A), len(B)]`` CKA grid of the module docstring. Pass the same list twice for a model's own
    layer x layer heatmap. Memory per batch is ``O((A + B) m^2)``, independent of the dataset size.

    Example:
        >>> acc = MinibatchCKA()
        >>> for xb, yb in batches:  # doctest: +SKIP
        ...     acc.update([h1(xb), h2(xb)], [g1(xb), g2(xb), g3(xb)])
        >>> acc.compute().shape  # doctest: +SKIP
        torch.Size([2, 3])
    """

    def __init__(self):
        self.reset()

    def reset(self) -> MinibatchCKA:
        """Forget every batch seen so far."""
        self.xy_ = self.xx_ = self.yy_ = None
        self.n_batches_ = 0
        return self

    @staticmethod
    def _grams(layers, side: str) -> Tensor:
        if isinstance(layers, Tensor):
            layers = [layers]
        if len(layers) == 0:
            raise ValueError(f"{side} must be a tensor [m, ...] or a non-empty list of them")
        grams = []
        for i, h in enumerate(layers):
            if not isinstance(h, Tensor) or h.ndim < 2:
                raise ValueError(f"{side}[{i}] must be a tensor [m, ...] (m examples); got "
                                 f"{getattr(h, 'shape', type(h).__name__)}")
            h = as_representation(h.flatten(1), f"{side}[{i}]", min_rows=4)
            h = h - h.mean(0)  # HSIC_1 ignores a shift of the features; centring first avoids cancellation
            grams.append(h @ h.mT)
        m = {g.shape[0] for g in grams}
        if len(m) > 1:
            raise ValueError(f"every layer in {side} must see the same m examples; got batch sizes {sorted(m)}")
        return torch.stack(grams)

    def update(self, xs, ys) -> MinibatchCKA:
        """Add one minibatch: ``xs``, ``ys`` are tensors ``[m, ...]`` or lists of them (one per layer), ``m >= 4``.

        Returns ``self``.
        """
        k, l = self._grams(xs, "xs"), self._grams(ys, "ys")
        if k.shape[-1] != l.shape[-1]:
            raise ValueError(f"xs and ys must hold the same minibatch; got m = {k.shape[-1]} and {l.shape[-1]}")
        if k.device != l.device:
            raise ValueError(f"xs are on {k.device} and ys on {l.device}; put both on one device")
        xy, xx, yy = _hsic1_grid(k, l), _diag_hsic1(k), _diag_hsic1(l)
        if self.n_batches_ and xy.shape != self.xy_.shape:
            raise ValueError(f"this accumulator holds a {tuple(self.xy_.shape)} grid of layers; the batch gives "
                             f"{tuple(xy.shape)}")
        if self.n_batches_ == 0:
            self.xy_, self.xx_, self.yy_ = xy, xx, yy
        else:
            self.xy_, self.xx_, self.yy_ = self.xy_ + xy, self.xx_ + xx, self.yy_ + yy
        self.n_batches_ += 1
        return self

    def compute(self) -> Tensor:
        """The CKA grid ``[len(xs), len(ys)]`` (a 0-d tensor when both sides had one layer)."""
        if self.n_batches_ == 0:
            raise ValueError("no batch seen yet: call update(xs, ys) first")
        grid = self.xy_ / (self.xx_.unsqueeze(1) * self.yy_.unsqueeze(0)).sqrt()
        return grid.squeeze() if grid.numel() == 1 else grid


def minibatch_cka(x: Tensor, y: Tensor, batch_size: int, *, generator: torch.Generator | None = None,
                  epochs: int = 1) -> Tensor:
    """Minibatch CKA of two full representations ``x`` ``[n, d_x]``, ``y`` ``[n, d_y]``, shuffled into batches.

    Each epoch draws a random permutation (``generator`` on the CPU) and cuts it into ``n // batch_size``
    minibatches (a last incomplete batch is dropped, as with ``drop_last``). Returns a 0-d tensor.
    """
    x, y = check_pair(x, y, min_rows=4)
    if x.ndim != 2 or y.ndim != 2:
        raise ValueError(f"minibatch_cka takes unbatched x [n, d_x] and y [n, d_y]; got {tuple(x.shape)}, "
                         f"{tuple(y.shape)}")
    n = x.shape[0]
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 4 <= batch_size <= n:
        raise ValueError(f"batch_size must be an integer in [4, n = {n}], got {batch_size!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
    acc = MinibatchCKA()
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator).to(x.device)
        for start in range(0, n - batch_size + 1, batch_size):
            idx = order[start:start + batch_size]
            acc.update(x[idx], y[idx])
    return acc.compute()
