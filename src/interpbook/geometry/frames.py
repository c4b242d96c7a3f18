"""Neural frames (Kvinge et al., 2022, arXiv:2211.10558): perturbation directions pushed through a network.

Context. At a data point ``x`` a *frame* is a set of tangent vectors ``V(x) = [v_1 ... v_k]``, each an
infinitesimal perturbation of a known kind: an augmentation (``d/dt T_t(x)`` at ``t = 0`` for a rotation,
a translation, a change of contrast ...), noise, or a direction along the data manifold. The *neural frame*
at layer ``l`` is its push-forward ``F_l(x) = J_{f<=l}(x) V(x)``: how each kind of perturbation moves the
layer's representation. Comparing the lengths, angles and rank of ``F_l`` layer by layer shows where a
network becomes invariant to a perturbation (the vector shrinks) and which perturbations it keeps apart.

- Directions: :func:`affine_tangents` (derivatives of an affine warp), :func:`photometric_tangents`,
  :func:`noise_directions`, :func:`local_pca_tangents` (top principal directions of the nearest neighbours).
- Push-forward: :func:`neural_frame` runs one forward-mode pass (``torch.func.jvp``) for every layer at once,
  batched over points and directions; :func:`sequential_stages` splits a model into layers.
- Statistics: :func:`frame_norms`, :func:`family_ratio`, :func:`frame_cosines`, :func:`effective_rank`.
- Training regimes compared in the paper: :func:`random_affine` + :func:`augmented_loss` (heavy augmentation)
  and :func:`adversarial_loss` (PGD training), both for :func:`interpbook.train.fit`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

AFFINE_KINDS = ("rotation", "translate_x", "translate_y", "scale", "shear")
PHOTOMETRIC_KINDS = ("brightness", "contrast")


# ---------------------------------------------------------------------------------------------- warps
def affine_matrix(batch: int, *, rotation=0.0, translate_x=0.0, translate_y=0.0, scale=0.0, shear=0.0,
                  size: tuple[int, int], device=None, dtype=torch.float32) -> Tensor:
    """``[batch, 2, 3]`` sampling matrices for :func:`torch.nn.functional.affine_grid` (``align_corners=False``).

    ``rotation`` in radians, translations in pixels, ``scale`` as a log factor (0: none), ``shear`` as the
    off-diagonal factor; each a number or a ``[batch]`` tensor. The output pixel at ``p`` samples the input at
    ``A p + b``, so every parameter at 0 is the identity. The warp is defined in pixel units (a rotation is
    rigid on non-square images too) and converted to ``affine_grid``'s normalised coordinates, which divide x
    by ``W/2`` and y by ``H/2``.
    """
    h, w = size
    p = [torch.as_tensor(v, device=device, dtype=dtype).expand(batch) for v in
         (rotation, translate_x, translate_y, scale, shear)]
    rot, tx, ty, sc, sh = p
    c, s, k = torch.cos(rot), torch.sin(rot), torch.exp(sc)
    zero = torch.zeros_like(rot)
    lin = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], 1) * k[:, None, None]
    lin = lin @ torch.stack([torch.stack([1 + zero, sh], -1), torch.stack([zero, 1 + zero], -1)], 1)
    aspect = torch.tensor([[1.0, h / w], [w / h, 1.0]], device=lin.device, dtype=lin.dtype)
    lin = lin * aspect  # D^-1 A D with D = diag(W/2, H/2): pixel-space linear map in normalised coordinates
    shift = torch.stack([2 * tx / w, 2 * ty / h], -1)  # one pixel is 2/size in normalised units
    return torch.cat([lin, shift.unsqueeze(-1)], -1)


def warp_affine(x: Tensor, theta: Tensor, mode: str = "bilinear") -> Tensor:
    """Resample images ``x`` ``[B, C, H, W]`` with matrices ``theta`` ``[B, 2, 3]`` (zeros outside)."""
    if x.dim() != 4 or theta.shape != (x.shape[0], 2, 3):
        raise ValueError(f"need x [B, C, H, W] and theta [B, 2, 3]; got {tuple(x.shape)} and {tuple(theta.shape)}")
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)


def _affine_generator(kind: str, batch: int, size, device, dtype) -> Tensor:
    """``d theta / dt`` at ``t = 0`` for the one-parameter family ``kind`` (``[batch, 2, 3]``)."""
    if kind not in AFFINE_KINDS:
        raise ValueError(f"unknown affine direction {kind!r}; allowed: {', '.join(AFFINE_KINDS)}")
    t = torch.zeros(batch, device=device, dtype=dtype)
    _, d_theta = torch.func.jvp(lambda e: affine_matrix(batch, size=size, device=device, dtype=dtype, **{kind: e}),
                                (t,), (torch.ones_like(t),))
    return d_theta


def affine_tangents(x: Tensor, kinds: Sequence[str] = AFFINE_KINDS) -> Tensor:
    """Tangent vectors of one-parameter affine warps at ``t = 0``: ``[B, len(kinds), C, H, W]``.

    ``v = grad x . u``, the image gradient (central differences, zeros outside the image) times the flow
    ``u = d(sampling position)/dt`` (``affine_grid`` is linear in ``theta``, so ``u = affine_grid(d theta/dt)``).
    This is the limit of the symmetric finite difference ``(warp_t(x) - warp_-t(x)) / 2t`` of the bilinear
    warp, and the exact derivative of a Catmull-Rom bicubic warp. (Autograd through ``grid_sample`` would
    give a one-sided difference, since the pixel centres are exactly the kinks of bilinear interpolation, and
    PyTorch's bicubic kernel, ``a = -0.75``, has 1.5x the central difference as its slope there.)
    Units: radians, pixels, log-scale, shear factor.
    """
    if x.dim() != 4:
        raise ValueError(f"x must be images [B, C, H, W], got shape {tuple(x.shape)}")
    b, _, h, w = x.shape
    pad = F.pad(x.detach(), (1, 1, 1, 1))
    gx = (pad[..., 1:-1, 2:] - pad[..., 1:-1, :-2]) * (w / 4)  # d x / d u in normalised units (a pixel is 2/w)
    gy = (pad[..., 2:, 1:-1] - pad[..., :-2, 1:-1]) * (h / 4)
    tangents = []
    for kind in kinds:
        flow = F.affine_grid(_affine_generator(kind, b, (h, w), x.device, x.dtype), [b, 1, h, w],
                             align_corners=False)  # [B, H, W, 2]: (u, v) velocity of every sampling point
        tangents.append(gx * flow[..., 0].unsqueeze(1) + gy * flow[..., 1].unsqueeze(1))
    return torch.stack(tangents, 1)


def photometric_tangents(x: Tensor, kinds: Sequence[str] = PHOTOMETRIC_KINDS) -> Tensor:
    """Tangents of ``x + t`` (brightness) and ``x + t (x - mean x)`` (contrast): ``[B, len(kinds), C, H, W]``."""
    table: dict[str, Callable[[Tensor], Tensor]] = {
        "brightness": torch.ones_like,
        "contrast": lambda z: z - z.mean(dim=(1, 2, 3), keepdim=True),
    }
    unknown = [k for k in kinds if k not in table]
    if unknown:
        raise ValueError(f"unknown photometric direction {unknown[0]!r}; allowed: {', '.join(table)}")
    return torch.stack([table[k](x) for k in kinds], 1)


def noise_directions(x: Tensor, k: int, *, generator: torch.Generator | None = None) -> Tensor:
    """``k`` isotropic Gaussian directions per point: ``[B, k, *x.shape[1:]]``."""
    if k < 1:
        raise ValueError(f"k must be a positive number of directions, got {k}")
    return torch.randn((x.shape[0], k, *x.shape[1:]), generator=generator, device=x.device, dtype=x.dtype)


def local_pca_tangents(x: Tensor, reference: Tensor, *, neighbors: int = 20, rank: int = 4) -> Tensor:
    """Local-PCA estimate of the data manifold's tangent space at each point: ``[B, rank, *x.shape[1:]]``.

    The top ``rank`` right singular vectors of the ``neighbors`` nearest reference points (Euclidean), centred
    on their mean. Signs are arbitrary. A point present in ``reference`` counts as its own neighbour.
    """
    if not 1 <= rank < neighbors <= len(reference) or rank > x[0].numel():
        raise ValueError(f"need 1 <= rank < neighbors <= len(reference) and rank <= the point dimension (centred "
                         f"neighbours span at most neighbors - 1 directions); got rank={rank}, "
                         f"neighbors={neighbors}, {len(reference)} reference points of dimension {x[0].numel()}")
    if x.shape[1:] != reference.shape[1:]:
        raise ValueError(f"x {tuple(x.shape)} and reference {tuple(reference.shape)} differ in point shape")
    q, r = x.flatten(1), reference.flatten(1).to(x)
    idx = torch.cdist(q, r).topk(neighbors, dim=1, largest=False).indices  # [B, neighbors]
    nb = r[idx]
    _, _, vh = torch.linalg.svd(nb - nb.mean(1, keepdim=True), full_matrices=False)
    return vh[:, :rank].reshape(x.shape[0], rank, *x.shape[1:])


def unit(directions: Tensor) -> Tensor:
    """Scale each direction of ``[B, K, ...]`` to unit L2 norm, so that frames start comparable."""
    norms = directions.flatten(2).norm(dim=2).clamp_min(1e-12)
    return directions / norms.view(*norms.shape, *([1] * (directions.dim() - 2)))


# ---------------------------------------------------------------------------------------------- frames
@dataclass
class NeuralFrame:
    """The frame of ``K`` directions at ``B`` points, pushed through every recorded layer.

    ``layers[i]`` names ``activations[i]`` ``[B, d_i]`` and ``vectors[i]`` ``[B, K, d_i]`` (flattened); layer 0 is
    the input, whose vectors are the directions themselves.
    """

    layers: list[str]
    activations: list[Tensor]
    vectors: list[Tensor]

    def __getitem__(self, layer: str) -> Tensor:
        if layer not in self.layers:
            raise KeyError(f"no layer {layer!r}; recorded: {', '.join(self.layers)}")
        return self.vectors[self.layers.index(layer)]


def sequential_stages(model: nn.Module) -> tuple[list[nn.Module], list[int], list[str]]:
    """Split ``model`` into its leaf modules in order, and pick the layers a frame records.

    Nested ``nn.Sequential`` containers are expanded in registration order (``SmallCNN``: ``features`` then
    ``head``; ``MLP``: ``net``). Recorded: the output of every nonlinearity (named after the convolution or
    linear map before it, ``conv1``, ``fc1`` ...) and the model's output (``output``).
    Returns ``(stages, taps, names)``: composing ``stages`` must equal ``model`` (:func:`neural_frame` checks).
    """
    stages: list[nn.Module] = []

    def expand(m: nn.Module):
        kids = list(m.children())
        if isinstance(m, nn.Sequential) or (kids and type(m).forward is not nn.Module.forward and
                                            all(isinstance(k, nn.Sequential) for k in kids)):
            for k in kids:
                expand(k)
        else:
            stages.append(m)

    expand(model)
    taps, names, counts, last = [], [], {"conv": 0, "fc": 0}, None
    for i, m in enumerate(stages):
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            counts["conv"] += 1
            last = f"conv{counts['conv']}"
        elif isinstance(m, nn.Linear):
            counts["fc"] += 1
            last = f"fc{counts['fc']}"
        elif isinstance(m, (nn.ReLU, nn.GELU, nn.Tanh, nn.Sigmoid, nn.LeakyReLU, nn.SiLU)) and i < len(stages) - 1:
            taps.append(i)
            names.append(last or f"act{len(taps)}")
    taps.append(len(stages) - 1)
    names.append("output")
    return stages, taps, names


def neural_frame(model: nn.Module, x: Tensor, directions: Tensor, *, stages=None, chunk: int = 64,
                 check: bool = True) -> NeuralFrame:
    """Push directions ``[B, K, *x.shape[1:]]`` through every layer of ``model`` at points ``x`` ``[B, ...]``.

    One forward-mode pass (``torch.func.jvp``) per chunk of points computes ``J_{<=l}(x) v`` for every recorded
    layer ``l`` and all ``K`` directions at once (the batch is ``chunk * K`` copies). ``stages`` defaults to
    :func:`sequential_stages`; pass ``(stages, taps, names)`` for another split. With ``check`` the composed
    stages are compared with ``model(x)`` first, so a model whose forward is not the chain of its children
    raises instead of giving a wrong frame.
    """
    if directions.dim() < 2 or directions.shape[0] != x.shape[0] or directions.shape[2:] != x.shape[1:]:
        raise ValueError(f"directions must be [B, K, *point shape] = [{x.shape[0]}, K, "
                         f"{', '.join(map(str, x.shape[1:]))}], got {tuple(directions.shape)}")
    if chunk < 1:
        raise ValueError(f"chunk must be a positive number of points, got {chunk}")
    mods, taps, names = stages if stages is not None else sequential_stages(model)
    tapset = set(taps)

    def forward(z: Tensor) -> tuple[Tensor, ...]:
        outs = []
        for i, m in enumerate(mods):
            z = m(z)
            if i in tapset:
                outs.append(z.flatten(1))
        return tuple(outs)

    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            if check and not torch.allclose(forward(x[:2])[-1], model(x[:2]).flatten(1), rtol=1e-4, atol=1e-5):
                raise ValueError("the model is not the chain of its stages (its forward does more than call its "
                                 "children in order); pass stages=(modules, taps, names) explicitly")
        b, k = directions.shape[:2]
        acts: list[list[Tensor]] = [[] for _ in taps]
        vecs: list[list[Tensor]] = [[] for _ in taps]
        for s in range(0, b, chunk):
            xs, vs = x[s:s + chunk], directions[s:s + chunk]
            n = len(xs)
            with torch.no_grad():
                for i, a in enumerate(forward(xs)):
                    acts[i].append(a)
            rep = xs.repeat_interleave(k, 0)  # [n*K, ...], point-major like the directions
            with torch.no_grad():  # forward mode needs no autograd graph
                _, tangents = torch.func.jvp(forward, (rep,), (vs.reshape(n * k, *xs.shape[1:]),))
            for i, t in enumerate(tangents):
                vecs[i].append(t.detach().view(n, k, -1))
    finally:
        model.train(was)
    return NeuralFrame(["input", *names], [x.flatten(1), *(torch.cat(a) for a in acts)],
                       [directions.flatten(2), *(torch.cat(v) for v in vecs)])


# ---------------------------------------------------------------------------------------------- statistics
def frame_norms(frame: NeuralFrame) -> Tensor:
    """Length of every frame vector: ``[layers, B, K]``."""
    return torch.stack([v.norm(dim=-1) for v in frame.vectors])


def family_ratio(norms: Tensor, family: Sequence[int], reference: Sequence[int]) -> Tensor:
    """How strongly each layer responds to a family of directions relative to a reference family (noise).

    ``rho_l = mean_{v in family} ||J_l v|| / mean_{v in reference} ||J_l v||`` per point, then the geometric mean
    over points: ``[layers]``. With unit-norm directions ``rho_0 = 1``. The ratio is unchanged by rescaling a
    layer, so models whose activations differ in scale can be compared. A point where the layer does not
    respond to the reference at all (a dead layer: 0 / 0, or x / 0) has no ratio and is left out of the mean;
    a layer with no such point left is NaN.
    """
    family, reference = list(family), list(reference)
    if not family or not reference:
        raise ValueError("family and reference must each list at least one direction index")
    per_point = norms[..., family].mean(-1) / norms[..., reference].mean(-1)
    logs = per_point.log()  # -inf where the family gives 0 against a live reference: a true zero response
    logs = torch.where(torch.isfinite(per_point), logs, torch.full_like(logs, float("nan")))
    return logs.nanmean(-1).exp()


def frame_cosines(vectors: Tensor) -> Tensor:
    """Cosine similarity between the frame vectors at each point: ``[B, K, d] -> [B, K, K]``."""
    u = vectors / vectors.norm(dim=-1, keepdim=True).clamp_min(1e-30)
    return u @ u.transpose(-1, -2)


def effective_rank(vectors: Tensor) -> Tensor:
    """Effective rank ``exp(H(s^2 / sum s^2))`` of each point's frame ``[B, K, d] -> [B]``.

    ``s`` are the singular values of the ``K x d`` frame: ``K`` for ``K`` orthogonal equal-length vectors, 1
    when all vectors are parallel, NaN for an all-zero frame. It measures how many independent directions a
    layer keeps. This is the
    *energy* form (the distribution of ``s^2``); Roy & Vetterli (2007) define the effective rank with
    ``p = s / sum s``, which is never smaller than this one for the same frame.
    """
    s2 = torch.linalg.svdvals(vectors.double()) ** 2
    total = s2.sum(-1, keepdim=True)
    p = s2 / total.clamp_min(1e-300)
    rank = torch.exp(-(p * p.clamp_min(1e-300).log()).sum(-1))
    return torch.where(total.squeeze(-1) > 0, rank, torch.nan).to(vectors.dtype)  # an all-zero frame has none


# ---------------------------------------------------------------------------------------------- training regimes
def random_affine(x: Tensor, *, rotation_deg: float = 25.0, translate_px: float = 2.0,
                  scale: tuple[float, float] = (0.9, 1.1), generator: torch.Generator | None = None) -> Tensor:
    """Heavy geometric augmentation: a uniformly random rotation, translation and scaling per image."""
    if rotation_deg < 0 or translate_px < 0 or not 0 < scale[0] <= scale[1]:
        raise ValueError(f"need rotation_deg >= 0, translate_px >= 0 and 0 < scale[0] <= scale[1]; got "
                         f"{rotation_deg}, {translate_px}, {scale}")
    b = x.shape[0]

    def u(lo, hi):
        return lo + (hi - lo) * torch.rand(b, generator=generator, device=x.device, dtype=x.dtype)

    theta = affine_matrix(b, rotation=u(-1, 1) * math.radians(rotation_deg), translate_x=u(-1, 1) * translate_px,
                          translate_y=u(-1, 1) * translate_px, scale=u(math.log(scale[0]), math.log(scale[1])),
                          size=tuple(x.shape[-2:]), device=x.device, dtype=x.dtype)
    return warp_affine(x, theta, mode="bilinear")


def augmented_loss(seed: int = 0, **augmentation) -> Callable[[nn.Module, tuple, Tensor], Tensor]:
    """A loss for :func:`interpbook.train.fit`: cross-entropy on a fresh :func:`random_affine` draw of each batch."""
    state: dict[str, torch.Generator] = {}

    def loss(model: nn.Module, inputs: tuple, targets: Tensor) -> Tensor:
        x = inputs[0]
        if "gen" not in state:
            state["gen"] = torch.Generator(device=x.device).manual_seed(seed)
        return F.cross_entropy(model(random_affine(x, generator=state["gen"], **augmentation)), targets)

    return loss


def adversarial_loss(eps: float, *, steps: int = 5, step_size: float | None = None, norm="inf",
                     seed: int = 0) -> Callable[[nn.Module, tuple, Tensor], Tensor]:
    """A loss for :func:`interpbook.train.fit`: cross-entropy on PGD examples (Madry et al., 2018), pixels in [0, 1]."""
    from interpbook.attacks import perturb

    state: dict[str, torch.Generator] = {}

    def loss(model: nn.Module, inputs: tuple, targets: Tensor) -> Tensor:
        x = inputs[0]
        if "gen" not in state:
            state["gen"] = torch.Generator(device=x.device).manual_seed(seed)
        x_adv = perturb(model, x, targets, norm=norm, eps=eps, steps=steps, step_size=step_size,
                        generator=state["gen"])
        return F.cross_entropy(model(x_adv), targets)

    return loss
