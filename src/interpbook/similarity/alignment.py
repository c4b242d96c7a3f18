"""Hidden-unit symmetries of MLPs: rotations, permutations, alignment and linear mode connectivity.

Context. A hidden layer of an MLP computes ``h = sigma(W x + b)`` and the next layer reads ``W' h``. For any
invertible ``M`` the weights ``(M W, M b, W' M^-1)`` compute the same function *when sigma is the identity*
(a linear net has no privileged basis). An elementwise nonlinearity breaks this: only the maps that commute
with it survive, which for ReLU are permutations (and positive rescalings). Two consequences studied by
Brown, Vyas & Bansal (2023), "On Privileged and Convergent Bases in Neural Network Representations":

* **rotation probe** (:func:`rotate_hidden`): rotate the pre-activations of a hidden layer by ``R`` and
  compensate with ``W' R^T``. A linear net is unchanged; a ReLU net is not, because ``relu(R z) != R relu(z)``.
  :func:`rotation_by_angle` draws an ``R`` that moves *every* vector by the same angle ``theta``.
* **permutation alignment** (:func:`activation_matching`, :func:`permute_hidden`): because permuting hidden
  units leaves a ReLU net's function unchanged, two independently trained nets can be compared, or averaged,
  only after putting their units in corresponding order. Activation matching (Li et al., 2016; Ainsworth,
  Hayase & Srinivasa, 2023) solves, per layer, the assignment problem on the units' activation correlations
  (Hungarian algorithm).
* **linear mode connectivity** (:func:`interpolation_curve`, :func:`loss_barrier`): evaluate the nets on the
  segment ``(1 - a) theta_A + a theta_B`` of weight space; the *barrier* is the largest excess of the loss over
  the straight line between the end points (Frankle et al., 2020; Entezari et al., 2022),

      B = max_a  L((1 - a) theta_A + a theta_B) - [(1 - a) L(theta_A) + a L(theta_B)].

Models are MLPs made of ``nn.Linear`` layers separated by elementwise activations (``interpbook.models.MLP``,
an ``nn.Sequential``, or a model whose ``.net`` is one); :func:`mlp_layers` finds the linear layers.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

ELEMENTWISE = (nn.ReLU, nn.Identity, nn.GELU, nn.Tanh, nn.Sigmoid, nn.LeakyReLU, nn.Flatten)


def mlp_layers(model: nn.Module) -> list[nn.Linear]:
    """The ``nn.Linear`` layers of an MLP in forward order; raise if the model is not a plain MLP.

    Accepted: an ``nn.Sequential`` (or a model whose ``.net`` is one) holding only ``nn.Linear`` layers and
    elementwise modules (``ReLU, Identity, GELU, Tanh, Sigmoid, LeakyReLU``, and ``Flatten``), with at least
    one hidden layer, where each layer's input width is the previous one's output width.
    """
    seq = model.net if isinstance(getattr(model, "net", None), nn.Sequential) else model
    if not isinstance(seq, nn.Sequential):
        raise ValueError(f"expected an MLP: an nn.Sequential or a model with an nn.Sequential .net; got "
                         f"{type(model).__name__}")
    other = [type(m).__name__ for m in seq if not isinstance(m, (nn.Linear, *ELEMENTWISE))]
    if other:
        raise ValueError(f"the MLP may hold only nn.Linear layers and elementwise activations "
                         f"({', '.join(t.__name__ for t in ELEMENTWISE)}); found {', '.join(other)}")
    linears = [m for m in seq if isinstance(m, nn.Linear)]
    if len(linears) < 2:
        raise ValueError(f"the MLP needs at least one hidden layer (two nn.Linear layers), found {len(linears)}")
    for a, b in zip(linears[:-1], linears[1:]):
        if a.out_features != b.in_features or a.bias is None or b.bias is None:
            raise ValueError("consecutive nn.Linear layers must chain (out_features == next in_features) and "
                             "have biases")
    return linears


def _check_layer(model: nn.Module, layer: int) -> list[nn.Linear]:
    linears = mlp_layers(model)
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < len(linears) - 1:
        raise ValueError(f"layer must be a hidden-layer index in 0..{len(linears) - 2}, got {layer!r}")
    return linears


@torch.no_grad()
def hidden_activations(model: nn.Module, x: Tensor) -> list[Tensor]:
    """Post-activation outputs of every hidden layer on ``x``: a list of ``[n, width_l]`` tensors."""
    seq = model.net if isinstance(getattr(model, "net", None), nn.Sequential) else model
    linears = mlp_layers(model)
    outs, h, seen = [], x, 0
    modules = list(seq)
    for i, m in enumerate(modules):
        h = m(h)
        if isinstance(m, nn.Linear):
            seen += 1
        # a hidden layer's output is read after its activation (the last module before the next Linear)
        nxt = modules[i + 1] if i + 1 < len(modules) else None
        if 0 < seen < len(linears) and (nxt is None or isinstance(nxt, nn.Linear)):
            outs.append(h)
    return outs


# ------------------------------------------------------------------------------------------------- rotations
def rotation_by_angle(d: int, theta: float, *, generator: torch.Generator | None = None,
                      dtype: torch.dtype = torch.float64) -> Tensor:
    """A random rotation ``R`` ``[d, d]`` that turns every vector by the angle ``theta`` (radians).

    ``R = Q diag(J(theta), ..., J(theta)) Q^T`` with ``Q`` Haar-random orthogonal and ``J`` the 2x2 rotation:
    ``R = expm(theta S)`` for the skew matrix ``S = Q diag(J(pi/2), ...) Q^T``, whose eigenvalues are all
    ``+-i``. Then ``<v, R v> = cos(theta) |v|^2`` for every ``v`` (for odd ``d`` one direction stays fixed).
    ``theta = 0`` gives the identity; ``theta = pi/2`` makes every vector orthogonal to its image.
    """
    if isinstance(d, bool) or not isinstance(d, int) or d < 1:
        raise ValueError(f"d must be a positive integer, got {d!r}")
    if not np.isfinite(theta):
        raise ValueError(f"theta must be a finite angle in radians, got {theta!r}")
    g = torch.randn(d, d, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(g)
    q = q * torch.sign(torch.diagonal(r))  # Haar measure (Mezzadri, 2007)
    c, s = np.cos(theta), np.sin(theta)
    block = torch.zeros(d, d, dtype=torch.float64)
    idx = torch.arange(0, d - d % 2, 2)
    block[idx, idx] = c
    block[idx + 1, idx + 1] = c
    block[idx, idx + 1] = -s
    block[idx + 1, idx] = s
    if d % 2:
        block[-1, -1] = 1.0
    return (q @ block @ q.T).to(dtype)


@torch.no_grad()
def rotate_hidden(model: nn.Module, layer: int, rotation: Tensor, *, compensate: bool = True) -> nn.Module:
    """A copy of ``model`` whose hidden layer ``layer`` has its pre-activations rotated by ``rotation``.

    The copy computes ``h_l = sigma(R (W_l h + b_l))``; with ``compensate`` the next layer reads ``W_{l+1} R^T``,
    which undoes the rotation exactly when ``sigma`` is the identity (a linear net) and not otherwise.

    Args:
        model: an MLP (see :func:`mlp_layers`); it is not modified.
        layer: hidden-layer index (0 = the first hidden layer).
        rotation: an orthogonal ``[width, width]`` matrix (e.g. :func:`rotation_by_angle`).
        compensate: also multiply the next layer's weights by ``R^T``.
    """
    linears = _check_layer(model, layer)
    width = linears[layer].out_features
    if not isinstance(rotation, Tensor) or rotation.shape != (width, width):
        raise ValueError(f"rotation must be a [{width}, {width}] tensor for hidden layer {layer}, got "
                         f"{tuple(getattr(rotation, 'shape', ()))}")
    eye = torch.eye(width, dtype=torch.float64, device=rotation.device)
    if not torch.allclose(rotation.double() @ rotation.double().T, eye, atol=1e-4):  # float32 R of width 4k
        raise ValueError("rotation must be orthogonal (R R^T = I)")
    out = copy.deepcopy(model)
    a, b = mlp_layers(out)[layer:layer + 2]
    r = rotation.to(a.weight.device, a.weight.dtype)
    a.weight.copy_(r @ a.weight)
    a.bias.copy_(r @ a.bias)
    if compensate:
        b.weight.copy_(b.weight @ r.T)
    return out


# ---------------------------------------------------------------------------------------------- permutations
def _safe_correlation(x: Tensor, y: Tensor) -> Tensor:
    """Pearson correlations ``[d_x, d_y]`` of the columns of ``x`` ``[n, d_x]`` and ``y`` ``[n, d_y]``, in float64;
    entries of a constant column (a dead unit) are 0, so that every unit still gets a partner."""
    x, y = x.double(), y.double()
    x, y = x - x.mean(0), y - y.mean(0)
    sx, sy = x.norm(dim=0), y.norm(dim=0)
    x = x / torch.where(sx > 0, sx, torch.ones_like(sx))
    y = y / torch.where(sy > 0, sy, torch.ones_like(sy))
    return x.T @ y


@torch.no_grad()
def activation_matching(reference: nn.Module, model: nn.Module, x: Tensor) -> list[Tensor]:
    """Per hidden layer, the permutation of ``model``'s units that best matches ``reference``'s, by activation.

    For each hidden layer, ``C_ij`` is the correlation over the inputs ``x`` between unit ``i`` of ``reference``
    and unit ``j`` of ``model``; the Hungarian algorithm picks the one-to-one assignment of largest total
    correlation. A unit that is constant on ``x`` (dead) has correlation 0 with everything and is assigned to
    whatever remains. Layers are matched independently: permuting one layer does not change another's
    activations.

    Returns:
        ``perms``: one ``[width_l]`` long tensor per hidden layer (on the CPU); unit ``perms[l][i]`` of ``model``
        takes position ``i``, so ``permute_hidden(model, perms)`` is aligned to ``reference``.
    """
    la, lb = mlp_layers(reference), mlp_layers(model)
    if [m.out_features for m in la] != [m.out_features for m in lb]:
        raise ValueError(f"the two MLPs must have the same widths; got {[m.out_features for m in la]} and "
                         f"{[m.out_features for m in lb]}")
    perms = []
    for za, zb in zip(hidden_activations(reference, x), hidden_activations(model, x)):
        c = _safe_correlation(za, zb).cpu().numpy()
        rows, cols = linear_sum_assignment(c, maximize=True)
        perms.append(torch.as_tensor(cols[np.argsort(rows)], dtype=torch.long))
    return perms


@torch.no_grad()
def permute_hidden(model: nn.Module, perms: list[Tensor]) -> nn.Module:
    """A copy of ``model`` with hidden units reordered: unit ``perms[l][i]`` of layer ``l`` moves to position ``i``.

    Rows of ``W_l``, ``b_l`` and columns of ``W_{l+1}`` are permuted together, so the function is unchanged.
    """
    linears = mlp_layers(model)
    if len(perms) != len(linears) - 1:
        raise ValueError(f"need one permutation per hidden layer ({len(linears) - 1}), got {len(perms)}")
    for l, (p, lin) in enumerate(zip(perms, linears)):
        p = torch.as_tensor(p)
        if p.shape != (lin.out_features,) or not torch.equal(p.sort().values.cpu(), torch.arange(lin.out_features)):
            raise ValueError(f"perms[{l}] must be a permutation of 0..{lin.out_features - 1}")
    out = copy.deepcopy(model)
    new = mlp_layers(out)
    for l, p in enumerate(perms):
        p = torch.as_tensor(p, device=new[l].weight.device)
        new[l].weight.copy_(new[l].weight[p])
        new[l].bias.copy_(new[l].bias[p])
        new[l + 1].weight.copy_(new[l + 1].weight[:, p])
    return out


# ------------------------------------------------------------------------------------ linear mode connectivity
@torch.no_grad()
def interpolate(model_a: nn.Module, model_b: nn.Module, alpha: float) -> nn.Module:
    """A copy of ``model_a`` with every parameter and buffer set to ``(1 - alpha) theta_A + alpha theta_B``."""
    sa, sb = model_a.state_dict(), model_b.state_dict()
    if sa.keys() != sb.keys() or any(sa[k].shape != sb[k].shape for k in sa):
        raise ValueError("the two models must have the same architecture (state_dict keys and shapes)")
    out = copy.deepcopy(model_a)
    out.load_state_dict({k: torch.lerp(sa[k].float(), sb[k].float(), float(alpha)).to(sa[k].dtype)
                         if sa[k].is_floating_point() else sa[k] for k in sa})
    return out


@dataclass(frozen=True)
class InterpolationCurve:
    """Loss and accuracy along the segment between two nets.

    Attributes:
        alphas: ``[k]`` interpolation weights (0 = model A, 1 = model B).
        loss: ``[k]`` mean cross-entropy at each alpha.
        accuracy: ``[k]`` fraction correct at each alpha.
    """

    alphas: Tensor
    loss: Tensor
    accuracy: Tensor


@torch.no_grad()
def interpolation_curve(model_a: nn.Module, model_b: nn.Module, x: Tensor, y: Tensor, *,
                        alphas: int | Tensor = 21) -> InterpolationCurve:
    """Evaluate the nets on the straight line between ``model_a`` and ``model_b`` in weight space.

    All interpolated nets are evaluated in one batched call (``torch.func.functional_call`` under ``vmap``
    over the stacked parameters): ``len(alphas)`` nets x ``n`` examples.

    Args:
        model_a, model_b: nets of one architecture (on the device of ``x``).
        x, y: inputs and integer labels.
        alphas: a number of evenly spaced points in ``[0, 1]`` (default 21) or the weights themselves.
    """
    if isinstance(alphas, int) and not isinstance(alphas, bool):
        if alphas < 2:
            raise ValueError(f"alphas must be at least 2 points, got {alphas}")
        alphas = torch.linspace(0, 1, alphas)
    alphas = torch.as_tensor(alphas, dtype=torch.float32)
    if alphas.ndim != 1 or len(alphas) < 2:
        raise ValueError(f"alphas must be an int >= 2 or a 1-D tensor of at least 2 weights, got shape "
                         f"{tuple(alphas.shape)}")
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length: {len(x)} vs {len(y)}")
    pa, pb = dict(model_a.named_parameters()), dict(model_b.named_parameters())
    if pa.keys() != pb.keys() or any(pa[k].shape != pb[k].shape for k in pa):
        raise ValueError("the two models must have the same architecture (parameter names and shapes)")
    a = alphas.to(x.device)
    stacked = {k: torch.lerp(pa[k].unsqueeze(0), pb[k].unsqueeze(0),
                             a.view(-1, *([1] * pa[k].dim()))) for k in pa}  # [k, *shape]
    was = model_a.training
    model_a.eval()
    logits = torch.func.vmap(lambda p: torch.func.functional_call(model_a, p, (x,)))(stacked)  # [k, n, classes]
    model_a.train(was)
    loss = F.cross_entropy(logits.flatten(0, 1), y.repeat(len(a)), reduction="none").view(len(a), -1).mean(1)
    acc = (logits.argmax(-1) == y).float().mean(1)
    return InterpolationCurve(alphas, loss.cpu(), acc.cpu())


def loss_barrier(curve: InterpolationCurve, *, metric: str = "loss") -> float:
    """The barrier of an :class:`InterpolationCurve`: the largest excess over the straight line between its ends.

    ``metric="loss"``: ``max_a L(a) - [(1 - a) L(0) + a L(1)]`` (in nats). ``metric="error"``: the same on the
    error rate ``1 - accuracy`` (a fraction). Assumes the curve's first and last alphas are 0 and 1.
    """
    if metric not in ("loss", "error"):
        raise ValueError(f"unknown metric {metric!r}; allowed: 'loss', 'error'")
    v = curve.loss if metric == "loss" else 1 - curve.accuracy
    a = curve.alphas
    line = (1 - a) * v[0] + a * v[-1]
    return float((v - line).max())


# ------------------------------------------------------------------------------------------ helpers for MLPs
def replace_activations(model: nn.Module, activation: type[nn.Module] = nn.Identity) -> nn.Module:
    """``model`` (in place) with every ``nn.ReLU`` replaced by ``activation()``: ``nn.Identity`` makes a linear net
    of the same shape and initialisation, the control of the rotation probe."""
    seq = model.net if isinstance(getattr(model, "net", None), nn.Sequential) else model
    mlp_layers(model)
    for i, m in enumerate(seq):
        if isinstance(m, nn.ReLU):
            seq[i] = activation()
    return model


@torch.no_grad()
def share_early_layers(source: nn.Module, target: nn.Module, k: int) -> list[nn.Parameter]:
    """Copy the first ``k`` linear layers of ``source`` into ``target``; return ``target``'s other parameters.

    Train ``target`` on the returned parameters only (``fit(..., parameters=...)``) to get a net whose first
    ``k`` layers are *frozen identically* to ``source``'s.
    """
    ls, lt = mlp_layers(source), mlp_layers(target)
    if [m.weight.shape for m in ls] != [m.weight.shape for m in lt]:
        raise ValueError("source and target must be MLPs of the same shape")
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < len(lt):
        raise ValueError(f"k must be an integer in 0..{len(lt) - 1} (the output layer is never frozen), got {k!r}")
    for a, b in zip(ls[:k], lt[:k]):
        b.load_state_dict(a.state_dict())
    frozen = {id(p) for m in lt[:k] for p in m.parameters()}
    return [p for p in target.parameters() if id(p) not in frozen]


# -------------------------------------------------------------------------------------------- basis correlation
@dataclass(frozen=True)
class BasisCorrelation:
    """How well the units of two representations correspond, fitted on one set of inputs, scored on another.

    Attributes:
        match: ``rho_match``: mean held-out correlation of the unit pairs chosen by the Hungarian matching.
        rotation: ``rho_rot``: mean held-out correlation of each unit of ``x`` with the same coordinate of ``y``
            after the best orthogonal map (Procrustes on centred activations); permutations are rotations, so
            this is the rotation-invariant ceiling of ``match``.
        matched: ``[m]`` the held-out correlations of the matched pairs.
        live: number of units of ``x`` and ``y`` kept (not constant on either input set).
    """

    match: float
    rotation: float
    matched: Tensor
    live: tuple[int, int]


@torch.no_grad()
def basis_correlation(x_fit: Tensor, y_fit: Tensor, x_eval: Tensor, y_eval: Tensor) -> BasisCorrelation:
    """``rho_match`` and ``rho_rot`` between two layers' activations (Brown et al., 2023; Li et al., 2016).

    The unit matching (Hungarian on correlations) and the orthogonal map are fitted on ``x_fit [n, d_x]``,
    ``y_fit [n, d_y]`` and scored on held-out ``x_eval [m, d_x]``, ``y_eval [m, d_y]``, so that the map with more
    freedom (a rotation) gets no credit for fitting noise. Units constant on either set are dropped.
    """
    from interpbook.similarity.matching import correlation_matrix, match_units
    from interpbook.similarity.procrustes import orthogonal_procrustes

    for name, a, b in (("x", x_fit, x_eval), ("y", y_fit, y_eval)):
        if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
            raise ValueError(f"{name}_fit and {name}_eval must be [n, d] matrices of the same units; got "
                             f"{tuple(a.shape)} and {tuple(b.shape)}")
    if len(x_fit) != len(y_fit) or len(x_eval) != len(y_eval):
        raise ValueError("x and y must hold the same examples: x_fit/y_fit and x_eval/y_eval differ in rows")
    keep_x = (x_fit.std(0) > 1e-6) & (x_eval.std(0) > 1e-6)
    keep_y = (y_fit.std(0) > 1e-6) & (y_eval.std(0) > 1e-6)
    if int(keep_x.sum()) < 2 or int(keep_y.sum()) < 2:
        raise ValueError("fewer than 2 live units (non-constant activations) on one side")
    xf, yf, xe, ye = (t.double() for t in (x_fit[:, keep_x], y_fit[:, keep_y], x_eval[:, keep_x], y_eval[:, keep_y]))
    pairs = match_units(xf, yf)
    c = correlation_matrix(xe, ye, dtype=torch.float64).cpu()
    matched = c[pairs.x_units, pairs.y_units]

    mx, my = xf.mean(0), yf.mean(0)
    r = orthogonal_procrustes(yf - my, xf - mx)  # [d_y, d_x]; centred, not scaled: a rotated copy maps exactly
    mapped = (ye - my) @ r  # y's activations rotated into x's coordinates, [m, d_x]
    rot = torch.diagonal(_safe_correlation(xe, mapped))  # a coordinate the map leaves empty counts as 0
    return BasisCorrelation(float(matched.mean()), float(rot.mean()), matched, (int(keep_x.sum()), int(keep_y.sum())))
