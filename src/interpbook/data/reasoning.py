"""Easy-to-hard reasoning datasets: prefix sums and mazes, generated procedurally, in the official formats.

Context. Schwarzschild et al. {cite}`schwarzschild2021datasets` built datasets in which *difficulty is a
knob*: a model is trained on small instances and tested on larger ones, so "generalising from easy to
hard" can be measured. Here both generators are re-implemented (vectorised), with the official on-disk
formats so the official loaders (``easy_to_hard_data``, ``download=False``) read our files.

* **Prefix sums** -- input a bit string ``x`` of length ``n``; target ``y_i = (x_1 + ... + x_i) mod 2``.
  Difficulty = ``n``: every output bit depends on everything to its left, so a model needs a receptive
  field of ``n`` (or ``n`` steps of iteration). The official loader serves ``x - 0.5`` (values ±0.5),
  shape (1, n), and long targets.
* **Mazes** -- a *perfect* maze (its passages form a spanning tree of the ``c x c`` cell grid, so exactly
  one path joins any two cells) drawn by the randomised depth-first search (recursive backtracker) on a
  (2c+1) x (2c+1) pixel grid: cell (r, k) is pixel (2r+1, 2k+1), a knocked-down wall is the pixel
  between two cells. Start pixel green (0, 1, 0), end pixel red (1, 0, 0), other open pixels white, walls
  black; the target is the start-to-end path as a 0/1 mask. The official "size" s is odd and ``c =
  (s+1)/2``; the official files are upsampled x2 with a one-pixel zero border (side 4c+4: 9 -> 24,
  33 -> 72, 59 -> 124).

Random numbers come from a numpy ``Generator`` seeded by ``seed`` on the CPU, then tensors move to
``device``: the same seed gives the same data on every device.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

PREFIX_SUM_LENGTHS = tuple(range(16, 65)) + (72, 128, 256, 512)  # the official set: 10,000 strings each
MAZE_SIZES = tuple(range(9, 38, 2)) + (59,)  # official: 9..17 train+test (50k/10k), 19..37 and 59 test (1k)
START_RGB, END_RGB = (0.0, 1.0, 0.0), (1.0, 0.0, 0.0)


# -- prefix sums ----------------------------------------------------------------------------------------------
def prefix_sum_targets(bits: Tensor) -> Tensor:
    """``cumsum(bits) mod 2`` along the last axis, as long; ``bits`` holds 0/1 (any dtype)."""
    return torch.cumsum(bits.long(), dim=-1) % 2


def prefix_sums(n: int, bits: int, *, seed: int = 0, unique: bool = True, device="cpu") -> tuple[Tensor, Tensor]:
    """``n`` random bit strings of length ``bits`` and their prefix sums mod 2, as the official loader serves them.

    Args:
        n: number of strings (>= 1).
        bits: string length (>= 1).
        seed: seed of the generator.
        unique: all strings distinct (the official sets are); needs ``n <= 2**bits``.
        device: where the returned tensors live.

    Returns:
        inputs: float (n, 1, bits), values ±0.5 (the loader's ``x - 0.5``).
        targets: long (n, bits), ``y_i = (x_1 + ... + x_i) mod 2``.
    """
    _check_int("n", n, 1)
    _check_int("bits", bits, 1)
    if unique and bits < 63 and n > 2 ** bits:
        raise ValueError(f"unique=True needs n <= 2**bits = {2 ** bits}; got n={n} (or pass unique=False)")
    rng = np.random.default_rng(seed)
    if unique and bits < 24:
        # small spaces (as the official generator): draw integers without replacement, write them in binary
        ints = rng.choice(2 ** bits, size=n, replace=False)
        x = (ints[:, None] >> np.arange(bits)) & 1  # (n, bits), least significant bit first
    else:
        x = rng.integers(0, 2, size=(n, bits))
        while unique:  # redraw the later copies of repeated strings until none is left
            _, first = np.unique(x, axis=0, return_index=True)
            repeated = np.setdiff1d(np.arange(n), first)
            if repeated.size == 0:
                break
            x[repeated] = rng.integers(0, 2, size=(repeated.size, bits))
    x = torch.as_tensor(x, dtype=torch.long)
    inputs = (x.float() - 0.5).unsqueeze(1)  # (n, 1, bits)
    return inputs.to(device), prefix_sum_targets(x).to(device)


# -- mazes: generation ----------------------------------------------------------------------------------------
def maze_cells(size: int) -> int:
    """Cells per side ``c = (size + 1) // 2`` of an official maze ``size`` (odd, >= 3)."""
    if isinstance(size, bool) or int(size) != size or size < 3 or size % 2 == 0:
        raise ValueError(f"maze size must be an odd integer >= 3 (9, 11, ..., 59 in the official sets); got {size!r}")
    return (int(size) + 1) // 2


def _grid_neighbours(c: int) -> np.ndarray:
    """(c*c, 4) index of the cell above/below/left/right of each cell of a c x c grid, -1 outside."""
    r, k = np.divmod(np.arange(c * c), c)
    nb = np.stack([(r - 1) * c + k, (r + 1) * c + k, r * c + k - 1, r * c + k + 1], axis=1)
    inside = np.stack([r > 0, r < c - 1, k > 0, k < c - 1], axis=1)
    return np.where(inside, nb, -1)


def backtracker_grids(n: int, c: int, start: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Perfect mazes by randomised depth-first search, all ``n`` mazes in lockstep.

    Each maze keeps its own stack (an (n, c*c) array and a pointer). At every step every unfinished maze
    either knocks down the wall to a random unvisited neighbour of its current cell and moves there
    (pushing the current cell), or, at a dead end, pops its stack. Every cell is pushed once and popped at
    most once, so at most 2c^2 steps, each one vectorised over the mazes. The search starts at ``start``
    (flat cell index per maze), as the official generator starts at the start cell.

    Returns:
        uint8 (n, 2c+1, 2c+1) pixel grids, 1 = open.
    """
    cells, side = c * c, 2 * c + 1
    nb = _grid_neighbours(c)
    grid = np.zeros((n, side, side), dtype=np.uint8)
    r, k = np.divmod(np.arange(cells), c)
    grid[:, 2 * r + 1, 2 * k + 1] = 1  # every cell is open; the walls between them are knocked down below
    visited = np.zeros((n, cells), dtype=bool)
    stack = np.zeros((n, cells), dtype=np.int64)
    depth = np.zeros(n, dtype=np.int64)
    current = np.asarray(start, dtype=np.int64).copy()
    visited[np.arange(n), current] = True
    n_visited = np.ones(n, dtype=np.int64)
    while True:
        live = np.flatnonzero(n_visited < cells)
        if live.size == 0:
            return grid
        cand = nb[current[live]]  # (m, 4)
        free = (cand >= 0) & ~visited[live[:, None], np.maximum(cand, 0)]
        choice = np.where(free, rng.random(cand.shape), -1.0).argmax(1)  # a uniform random free neighbour
        moves = free.any(1)
        go, back = live[moves], live[~moves]
        nxt = cand[moves, choice[moves]]
        cur = current[go]
        grid[go, (cur // c) + (nxt // c) + 1, (cur % c) + (nxt % c) + 1] = 1  # the wall between the two cells
        stack[go, depth[go]] = cur
        depth[go] += 1
        current[go] = nxt
        visited[go, nxt] = True
        n_visited[go] += 1
        depth[back] -= 1
        current[back] = stack[back, depth[back]]


def _shift(a: np.ndarray, dr: int, dk: int) -> np.ndarray:
    """``out[..., i, j] = a[..., i + dr, j + dk]`` with zeros outside (dr, dk in {-1, 0, 1})."""
    out = np.zeros_like(a)
    h, w = a.shape[-2:]
    out[..., max(-dr, 0):h - max(dr, 0), max(-dk, 0):w - max(dk, 0)] = \
        a[..., max(dr, 0):h - max(-dr, 0), max(dk, 0):w - max(-dk, 0)]
    return out


_STEPS = ((-1, 0), (1, 0), (0, -1), (0, 1))


def solve_grids(open_: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Shortest start->end paths on pixel grids: a breadth-first flood fill, then a walk back down the distances.

    Independent of how the maze was made (works on any grid; in a perfect maze the shortest path is the
    only path). Vectorised over mazes: one dilation per distance step until every end is reached.

    Args:
        open_: bool (n, H, W), True = open pixel.
        start, end: (n, 2) pixel coordinates (row, col).

    Returns:
        uint8 (n, H, W) mask of the path pixels (start and end included).

    Raises:
        ValueError: if some end is not reachable from its start.
    """
    n = open_.shape[0]
    rows = np.arange(n)
    dist = np.full(open_.shape, -1, dtype=np.int64)
    front = np.zeros(open_.shape, dtype=bool)
    front[rows, start[:, 0], start[:, 1]] = True
    dist[front] = 0
    d = 0
    while (dist[rows, end[:, 0], end[:, 1]] < 0).any():
        grown = front.copy()
        for dr, dk in _STEPS:
            grown |= _shift(front, dr, dk)
        front = grown & open_ & (dist < 0)
        if not front.any():
            raise ValueError("some maze has no path from its start to its end")
        d += 1
        dist[front] = d
    path = np.zeros(open_.shape, dtype=np.uint8)
    pos = np.asarray(end, dtype=np.int64).copy()
    path[rows, pos[:, 0], pos[:, 1]] = 1
    here = dist[rows, pos[:, 0], pos[:, 1]]
    padded = np.pad(dist, ((0, 0), (1, 1), (1, 1)), constant_values=-1)
    while (here > 0).any():
        walking = here > 0
        # the neighbour one step closer to the start (in a tree there is exactly one)
        nbd = np.stack([padded[rows, pos[:, 0] + 1 + dr, pos[:, 1] + 1 + dk] for dr, dk in _STEPS], axis=1)
        step = np.asarray(_STEPS)[(nbd == (here - 1)[:, None]).argmax(1)]
        pos = np.where(walking[:, None], pos + step, pos)
        path[rows, pos[:, 0], pos[:, 1]] = 1
        here = np.where(walking, here - 1, here)
    return path


def upsample_mazes(a: Tensor) -> Tensor:
    """The official x2 upsampling with a one-pixel zero border: (..., H, W) -> (..., 2H+2, 2W+2)."""
    up = a.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)
    return torch.nn.functional.pad(up, (1, 1, 1, 1))


def downsample_mazes(a: Tensor) -> Tensor:
    """Inverse of :func:`upsample_mazes`: one pixel of each 2x2 block, border dropped."""
    if a.shape[-1] % 2 or a.shape[-2] % 2 or a.shape[-1] < 4:
        raise ValueError(f"upsampled mazes have an even side >= 4 (4c+4); got shape {tuple(a.shape)}")
    return a[..., 1:-1:2, 1:-1:2]


def mazes(n: int, size: int, *, seed: int = 0, upsample: bool = False, device="cpu") -> tuple[Tensor, Tensor]:
    """``n`` perfect mazes of official ``size`` with their solutions.

    Args:
        n: number of mazes (>= 1). Mazes are not deduplicated, as in the official ``make_mazes.py``: small
            sizes repeat (134 repeats among 50,000 mazes of size 9; 0.5 % of a separately seeded set of size 9
            also occurs in such a training set).
        size: odd >= 3; cells per side ``c = (size+1)//2`` (official sizes 9, 11, ..., 37, 59).
        seed: seed of the generator.
        upsample: the official x2 + border images (side 4c+4) instead of the raw grids (side 2c+1 = size+2).
        device: where the returned tensors live.

    Returns:
        inputs: float (n, 3, H, W): walls 0, open pixels white, start green (0,1,0), end red (1,0,0).
        targets: long (n, H, W): 1 on the start-to-end path (start and end included), 0 elsewhere.
    """
    _check_int("n", n, 1)
    c = maze_cells(size)
    rng = np.random.default_rng(seed)
    start = rng.integers(0, c * c, size=n)
    end = (start + rng.integers(1, c * c, size=n)) % (c * c)  # uniform over the other cells
    grid = backtracker_grids(n, c, start, rng)
    s_px = np.stack(np.divmod(start, c), axis=1) * 2 + 1  # (n, 2) pixel (row, col)
    e_px = np.stack(np.divmod(end, c), axis=1) * 2 + 1
    path = solve_grids(grid.astype(bool), s_px, e_px)
    inputs, targets = _render(torch.from_numpy(grid), s_px, e_px), torch.from_numpy(path).long()
    if upsample:
        inputs, targets = upsample_mazes(inputs), upsample_mazes(targets)
    return inputs.to(device), targets.to(device)


def _render(grid: Tensor, start: np.ndarray, end: np.ndarray) -> Tensor:
    """uint8 (n, H, W) open mask -> float (n, 3, H, W) image with the start and end pixels coloured."""
    img = grid.float().unsqueeze(1).repeat(1, 3, 1, 1)
    rows = torch.arange(grid.shape[0])
    img[rows, :, start[:, 0], start[:, 1]] = torch.tensor(START_RGB)
    img[rows, :, end[:, 0], end[:, 1]] = torch.tensor(END_RGB)
    return img


# -- mazes: reading them back ---------------------------------------------------------------------------------
def maze_endpoints(inputs: Tensor) -> tuple[Tensor, Tensor]:
    """(row, col) of the green start and the red end pixel of each maze image: two long (n, 2) tensors.

    On upsampled images the first (top-left) pixel of each 2x2 block is returned.
    """
    if inputs.dim() != 4 or inputs.shape[1] != 3:
        raise ValueError(f"maze images must be (n, 3, H, W); got shape {tuple(inputs.shape)}")
    r, g, b = inputs[:, 0], inputs[:, 1], inputs[:, 2]
    out = []
    for mask in ((g > 0.5) & (r < 0.5) & (b < 0.5), (r > 0.5) & (g < 0.5) & (b < 0.5)):
        flat = mask.flatten(1)
        if not bool(flat.any(1).all()):
            raise ValueError("every maze image needs one green start pixel and one red end pixel")
        idx = flat.float().argmax(1)  # first marked pixel in row-major order
        out.append(torch.stack([idx // inputs.shape[-1], idx % inputs.shape[-1]], dim=1))
    return out[0], out[1]


def _raw(inputs: Tensor, targets: Tensor | None = None):
    """Raw (side 2c+1, odd) views of possibly upsampled (side 4c+4, even) maze tensors."""
    if inputs.shape[-1] % 2 == 0:
        return downsample_mazes(inputs), None if targets is None else downsample_mazes(targets)
    return inputs, targets


def is_perfect_maze(inputs: Tensor) -> Tensor:
    """Bool (n,): is each maze image a perfect maze, i.e. do its passages form a spanning tree of the cells?

    Checked directly on the pixels, independently of how the maze was made: every cell pixel (odd, odd) is
    open and every corner pixel (even, even) closed; there are exactly c^2 - 1 open passages; and the cell
    graph is connected (``scipy.sparse.csgraph.connected_components`` on all mazes at once). A connected
    graph on c^2 nodes with c^2 - 1 edges is a tree, so any two cells are joined by exactly one path.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    open_ = (_raw(inputs)[0].amax(1) > 0).cpu().numpy()  # (n, H, W)
    n, side = open_.shape[0], open_.shape[-1]
    c = (side - 1) // 2
    cells_open = open_[:, 1::2, 1::2].all((1, 2))
    corners_closed = ~open_[:, ::2, ::2].any((1, 2))
    across = open_[:, 1::2, 2:-1:2]  # (n, c, c-1): passage between cell (r, k) and (r, k+1)
    down = open_[:, 2:-1:2, 1::2]  # (n, c-1, c): passage between cell (r, k) and (r+1, k)
    n_passages = across.sum((1, 2)) + down.sum((1, 2))
    node = np.arange(n * c * c).reshape(n, c, c)
    src = np.concatenate([node[:, :, :-1][across], node[:, :-1, :][down]])
    dst = np.concatenate([node[:, :, 1:][across], node[:, 1:, :][down]])
    graph = coo_matrix((np.ones(src.size), (src, dst)), shape=(n * c * c,) * 2)
    _, label = connected_components(graph, directed=False)
    connected = (label.reshape(n, c * c) == label.reshape(n, c * c)[:, :1]).all(1)
    return torch.from_numpy(cells_open & corners_closed & (n_passages == c * c - 1) & connected)


def is_solution_path(inputs: Tensor, targets: Tensor) -> Tensor:
    """Bool (n,): is each target a simple start-to-end path through open pixels?

    Every target pixel is open; the start and end pixels are on it with one target neighbour each; every
    other target pixel has exactly two. On a perfect maze (:func:`is_perfect_maze`) no cycle exists, so
    such a target is the one and only start-to-end path.
    """
    inputs, targets = _raw(inputs, targets)
    on = targets.bool()
    open_ = inputs.amax(1) > 0
    padded = torch.nn.functional.pad(on.float(), (1, 1, 1, 1))
    neighbours = (padded[:, :-2, 1:-1] + padded[:, 2:, 1:-1] + padded[:, 1:-1, :-2] + padded[:, 1:-1, 2:]).long()
    start, end = maze_endpoints(inputs)
    ends = torch.zeros_like(on)
    rows = torch.arange(len(on))
    ends[rows, start[:, 0], start[:, 1]] = True
    ends[rows, end[:, 0], end[:, 1]] = True
    want = torch.where(ends, 1, 2)
    return ((~on | open_) & (~ends | on) & (~on | (neighbours == want))).flatten(1).all(1)


@dataclass
class MazeStats:
    """Per-maze difficulty measures of raw (not upsampled) mazes; all long (n,) tensors.

    ``path_cells``: cells on the solution (start and end included); ``path_steps``: moves between cells
    (``path_cells - 1``; the official generator's pixel count is twice this); ``dead_ends``: cells with one
    open side; ``junctions``: cells with three or more open sides.
    """

    path_cells: Tensor
    path_steps: Tensor
    dead_ends: Tensor
    junctions: Tensor


def maze_stats(inputs: Tensor, targets: Tensor) -> MazeStats:
    """Difficulty statistics of mazes; accepts raw (side 2c+1) or upsampled (side 4c+4) tensors."""
    inputs, targets = _raw(inputs, targets)
    open_ = inputs.amax(1) > 0  # (n, H, W)
    cells = open_[:, 1::2, 1::2]  # (n, c, c)
    path_cells = targets[:, 1::2, 1::2].long().flatten(1).sum(1)
    degree = (open_[:, :-2:2, 1::2].long() + open_[:, 2::2, 1::2] + open_[:, 1::2, :-2:2] + open_[:, 1::2, 2::2])
    return MazeStats(path_cells, path_cells - 1, ((degree == 1) & cells).flatten(1).sum(1),
                     ((degree >= 3) & cells).flatten(1).sum(1))


# -- the official on-disk formats -----------------------------------------------------------------------------
def write_prefix_sums(root: str | os.PathLike, inputs: Tensor, targets: Tensor) -> Path:
    """Write ``prefix_sums_data/{bits}_data.pth`` and ``{bits}_targets.pth`` under ``root`` (official format).

    The files hold float 0/1 tensors (n, bits) as ``make_prefixsums.py`` saves them; ``inputs`` / ``targets``
    are what :func:`prefix_sums` returns (the loader's ±0.5 view). Returns the data file's path.
    """
    if inputs.dim() != 3 or inputs.shape[1] != 1 or targets.shape != (inputs.shape[0], inputs.shape[2]):
        raise ValueError(f"expected inputs (n, 1, bits) and targets (n, bits); got {tuple(inputs.shape)} and "
                         f"{tuple(targets.shape)}")
    folder = Path(root) / "prefix_sums_data"
    folder.mkdir(parents=True, exist_ok=True)
    bits = inputs.shape[-1]
    data = folder / f"{bits}_data.pth"
    torch.save((inputs.squeeze(1) + 0.5).float().cpu().contiguous(), data)
    torch.save(targets.float().cpu().contiguous(), folder / f"{bits}_targets.pth")
    return data


def read_prefix_sums(root: str | os.PathLike, bits: int, *, device="cpu") -> tuple[Tensor, Tensor]:
    """Read ``prefix_sums_data/{bits}_*.pth`` exactly as the official ``PrefixSumDataset`` serves it."""
    folder = Path(root) / "prefix_sums_data"
    x = torch.load(folder / f"{bits}_data.pth", weights_only=True)
    y = torch.load(folder / f"{bits}_targets.pth", weights_only=True)
    return (x.unsqueeze(1) - 0.5).to(device), y.long().to(device)


def maze_folder(root: str | os.PathLike, size: int, train: bool) -> Path:
    """``root/maze_data_{train|test}_{size}``, the official folder name."""
    maze_cells(size)
    return Path(root) / f"maze_data_{'train' if train else 'test'}_{size}"


def write_mazes(root: str | os.PathLike, size: int, inputs: Tensor, targets: Tensor, *, train: bool = True) -> Path:
    """Write ``maze_data_{train|test}_{size}/inputs.npy`` and ``solutions.npy`` (official format).

    Raw mazes (side size+2) are upsampled first, as the official files are (side 4c+4). Arrays are written
    as float32 (n, 3, H, W) and float32 (n, H, W); the official generator wrote float64, and the official
    loader casts either to float / long. Returns the folder.
    """
    c = maze_cells(size)
    if inputs.shape[-1] == 2 * c + 1:
        inputs, targets = upsample_mazes(inputs), upsample_mazes(targets)
    side = 4 * c + 4
    if inputs.dim() != 4 or inputs.shape[1:] != (3, side, side) or targets.shape != (inputs.shape[0], side, side):
        raise ValueError(f"mazes of size {size} are (n, 3, {2 * c + 1}, {2 * c + 1}) raw or (n, 3, {side}, {side}) "
                         f"upsampled with targets (n, H, W); got {tuple(inputs.shape)} and {tuple(targets.shape)}")
    folder = maze_folder(root, size, train)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "inputs.npy", inputs.float().cpu().numpy())
    np.save(folder / "solutions.npy", targets.float().cpu().numpy())
    return folder


def read_mazes(root: str | os.PathLike, size: int, *, train: bool = True, device="cpu") -> tuple[Tensor, Tensor]:
    """Read an official maze folder as ``MazeDataset`` serves it: float (n, 3, H, W), long (n, H, W)."""
    folder = maze_folder(root, size, train)
    inputs = torch.from_numpy(np.load(folder / "inputs.npy")).float()
    targets = torch.from_numpy(np.load(folder / "solutions.npy")).long()
    return inputs.to(device), targets.to(device)


def _check_int(name: str, value, low: int) -> None:
    if isinstance(value, bool) or int(value) != value or value < low:
        raise ValueError(f"{name} must be an integer >= {low}; got {value!r}")
