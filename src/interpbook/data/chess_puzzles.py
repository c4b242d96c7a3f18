"""Chess puzzles in the easy-to-hard format: the official encoding, the Lichess path, and synthetic mates in one.

Context. The third easy-to-hard dataset {cite}`schwarzschild2021datasets` asks for the first move of a Lichess
puzzle; difficulty is the puzzle's Lichess rating (the set is sorted by rating, easiest first). The official
``make_chess.py`` pushes the puzzle's first (opponent's) move, then encodes

* the board as a 12 x 8 x 8 float tensor, **side to move first**: channels K, Q, B, N, R, P of the mover,
  then k, q, b, n, r, p of the opponent; rows = ranks 1..8, columns = files a..h;
* the answer as an 8 x 8 long tensor with a 1 on the origin and on the destination square of the move
  (same orientation as the board); ``who_moves`` is 1.0 when black moves.

The official loader (``ChessPuzzleDataset``) flips the targets' rank axis when it reads ``targets.pth``, so
the targets it serves have rows = ranks 8..1 while the boards keep rows = ranks 1..8 (the repository's own
example figure shows Qf3xf7 drawn on rows 1 and 5 of the heat map). Tensors here follow the loader: a model
trained on them sees what it would see from the official files. :func:`decode_move` undoes the flip.

The Lichess CSV cannot be fetched offline, so this module also generates **synthetic mate-in-one puzzles**
with the ``chess`` package: random legal positions of a material signature (e.g. ``"KRvK"``) with exactly
one mating move. Difficulty is the signature (more pieces, more legal moves), not a Lichess rating.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

import chess
import numpy as np
import torch
from torch import Tensor

PIECE_ORDER = (chess.KING, chess.QUEEN, chess.BISHOP, chess.KNIGHT, chess.ROOK, chess.PAWN)  # official k,q,b,n,r,p
DEFAULT_SIGNATURES = ("KRvK", "KQvK", "KRBvKP", "KQNvKR", "KRRBvKRN")
_EDGE = np.array([s for s in chess.SQUARES if chess.square_rank(s) in (0, 7) or chess.square_file(s) in (0, 7)])
_RING2 = np.array([(dr, df) for dr in range(-2, 3) for df in range(-2, 3) if max(abs(dr), abs(df)) == 2])


@dataclass
class ChessPuzzles:
    """Encoded puzzles, as the official loader serves them, plus what is needed to decode them.

    ``inputs`` float (n, 12, 8, 8); ``targets`` long (n, 8, 8) (rank axis flipped, see the module note);
    ``who_moves`` float (n, 1), 1 = black to move; ``difficulty`` float (n,): the Lichess rating, or the index
    of the material signature for synthetic puzzles; ``fens`` the positions (side to move to play);
    ``moves`` the solution's first move (UCI); ``legal_moves`` long (n,) the number of legal moves.
    """

    inputs: Tensor
    targets: Tensor
    who_moves: Tensor
    difficulty: Tensor
    fens: list[str] = field(default_factory=list)
    moves: list[str] = field(default_factory=list)
    legal_moves: Tensor | None = None
    signatures: tuple[str, ...] = ()

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def to(self, device) -> ChessPuzzles:
        legal = None if self.legal_moves is None else self.legal_moves.to(device)
        return ChessPuzzles(self.inputs.to(device), self.targets.to(device), self.who_moves.to(device),
                            self.difficulty.to(device), self.fens, self.moves, legal, self.signatures)


# -- the official encoding ------------------------------------------------------------------------------------
def board_tensors(boards: list[chess.Board]) -> Tensor:
    """Boards -> float (n, 12, 8, 8), side to move in channels 0-5 (K, Q, B, N, R, P), rows = ranks 1..8."""
    masks = np.array([[b.pieces_mask(p, b.turn) for p in PIECE_ORDER] + [b.pieces_mask(p, not b.turn)
                                                                         for p in PIECE_ORDER]
                      for b in boards], dtype=np.uint64).reshape(len(boards), 12)
    # bit s of a python-chess mask is square s = 8 * rank + file, i.e. row-major with rank 1 first
    bits = (masks[:, :, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)
    return torch.from_numpy(bits.astype(np.float32)).reshape(len(boards), 12, 8, 8)


def move_targets(moves: list[chess.Move], *, loader: bool = True) -> Tensor:
    """Moves -> long (n, 8, 8) with 1 on the origin and destination squares.

    ``loader=True``: as the official loader serves them (rows = ranks 8..1); ``False``: as ``make_chess.py``
    stores them on disk (rows = ranks 1..8, like the boards).
    """
    t = torch.zeros(len(moves), 64, dtype=torch.long)
    rows = torch.arange(len(moves))
    t[rows, torch.tensor([m.from_square for m in moves], dtype=torch.long)] = 1
    t[rows, torch.tensor([m.to_square for m in moves], dtype=torch.long)] = 1
    t = t.reshape(len(moves), 8, 8)
    return t.flip(1) if loader else t


def decode_boards(inputs: Tensor, who_moves: Tensor) -> list[chess.Board]:
    """Inverse of :func:`board_tensors` (the official ``chess_board_to_str``, plus the side to move).

    Raises:
        ValueError: if a square holds more than one piece or the tensor is not (n, 12, 8, 8).
    """
    if inputs.dim() != 4 or inputs.shape[1:] != (12, 8, 8):
        raise ValueError(f"chess inputs must be (n, 12, 8, 8); got shape {tuple(inputs.shape)}")
    occ = inputs.detach().cpu().reshape(-1, 12, 64) > 0.5
    if bool((occ.sum(1) > 1).any()):
        raise ValueError("a square holds more than one piece: not an encoded board")
    black = who_moves.detach().cpu().reshape(-1).bool().tolist()
    boards = []
    for planes, blk in zip(occ.numpy(), black):
        board = chess.Board(None)
        mover, other = (chess.BLACK, chess.WHITE) if blk else (chess.WHITE, chess.BLACK)
        for ch, (colour, kind) in enumerate([(mover, p) for p in PIECE_ORDER] + [(other, p) for p in PIECE_ORDER]):
            for sq in np.flatnonzero(planes[ch]):
                board.set_piece_at(int(sq), chess.Piece(kind, colour))
        board.turn = mover
        boards.append(board)
    return boards


def decode_move(board: chess.Board, target: Tensor, *, loader: bool = True) -> list[chess.Move]:
    """The legal moves of ``board`` whose {origin, destination} are the target's two squares.

    Usually one move (several only for under-promotions); empty if the target is not a legal move.
    """
    t = target.detach().cpu().reshape(8, 8)
    t = t.flip(0) if loader else t
    squares = set(torch.nonzero(t.reshape(64)).flatten().tolist())
    if len(squares) != 2:
        return []
    return [m for m in board.legal_moves if {m.from_square, m.to_square} == squares]


def flip_black_to_move(inputs: Tensor, targets: Tensor, who_moves: Tensor) -> tuple[Tensor, Tensor]:
    """deep-thinking's ``FlippedChessPuzzleDataset``: flip black-to-move boards and targets along the rank axis."""
    black = who_moves.reshape(-1).bool()
    inputs, targets = inputs.clone(), targets.clone()
    inputs[black] = inputs[black].flip(2)
    targets[black] = targets[black].flip(1)
    return inputs, targets


def encode(boards: list[chess.Board], moves: list[chess.Move], difficulty, **extra) -> ChessPuzzles:
    """Boards (side to move to play) and their solutions -> :class:`ChessPuzzles` in the loader's layout."""
    who = torch.tensor([[float(b.turn == chess.BLACK)] for b in boards]).reshape(len(boards), 1)
    return ChessPuzzles(board_tensors(boards), move_targets(moves), who,
                        torch.as_tensor(difficulty, dtype=torch.float32).reshape(len(boards)),
                        [b.fen() for b in boards], [m.uci() for m in moves], **extra)


# -- synthetic mates in one -----------------------------------------------------------------------------------
def parse_signature(signature: str) -> tuple[str, str]:
    """``"KRBvKP"`` -> (``"KRB"``, ``"KP"``): the attacker's and the defender's pieces, one king each."""
    sides = signature.upper().split("V") if isinstance(signature, str) else []
    if (len(sides) != 2 or any(s.count("K") != 1 or set(s) - set("KQRBNP") for s in sides)
            or len(signature) > 17):
        raise ValueError(f"a material signature is '<attacker>v<defender>' over the letters KQRBNP with one K per "
                         f"side, e.g. 'KRvK' or 'KRBvKP'; got {signature!r}")
    return sides[0], sides[1]


def mating_moves(board: chess.Board, stop_after: int = 2) -> tuple[list[chess.Move], int]:
    """Moves of ``board`` that checkmate (at most ``stop_after`` are collected) and the number of legal moves."""
    mates, n_legal = [], 0
    for move in board.legal_moves:
        n_legal += 1
        if len(mates) < stop_after and board.gives_check(move):
            board.push(move)
            if board.is_checkmate():
                mates.append(move)
            board.pop()
    return mates, n_legal


def _candidates(attacker: str, defender: str, m: int, rng: np.random.Generator) -> np.ndarray:
    """(m, k) squares for the pieces attacker K first, then defender K, then the others (-1 = rejected).

    The defending king stands on an edge square and the attacking king two squares from it (where mates
    with little material happen); the other pieces are placed uniformly on the free squares.
    """
    dk = rng.choice(_EDGE, m)
    off = _RING2[rng.integers(0, len(_RING2), m)]
    ar, af = dk // 8 + off[:, 0], dk % 8 + off[:, 1]
    ok = (ar >= 0) & (ar < 8) & (af >= 0) & (af < 8)
    ak = np.where(ok, ar * 8 + af, 0)
    keys = rng.random((m, 64))
    keys[np.arange(m), dk] = keys[np.arange(m), ak] = 2.0  # the kings' squares sort last
    rest = np.argsort(keys, axis=1)[:, :len(attacker) + len(defender) - 2]
    squares = np.concatenate([ak[:, None], dk[:, None], rest], axis=1)
    pawn_cols = [i + 2 for i, p in enumerate(attacker.replace("K", "", 1) + defender.replace("K", "", 1)) if p == "P"]
    if pawn_cols:  # pawns never stand on the first or last rank
        ok &= ((squares[:, pawn_cols] // 8 % 7) != 0).all(1)
    squares[~ok] = -1
    return squares


def mate_in_one_puzzles(n: int, signatures=DEFAULT_SIGNATURES, *, seed: int = 0, black_fraction: float = 0.5,
                        device="cpu", max_candidates: int = 2_000_000) -> ChessPuzzles:
    """``n`` synthetic mate-in-one puzzles with a unique mating move, easiest signature first.

    Positions are sampled per material signature (white = attacker), kept when legal, the side to move is
    not in check, and exactly one legal move mates. A fraction ``black_fraction`` is then mirrored
    (``Board.mirror``: colours swapped, board flipped) so black is to move, as in half of the Lichess puzzles.

    Args:
        n: number of puzzles, split as evenly as possible over ``signatures`` (earlier ones get the remainder).
        signatures: material signatures, easiest first, e.g. ``("KRvK", "KRBvKP")``; the index is the
            puzzle's ``difficulty``.
        seed: seed of the sampler.
        black_fraction: probability that a puzzle is mirrored to black-to-move.
        device: where the returned tensors live.
        max_candidates: give up (ValueError) after this many sampled positions per signature.

    Returns:
        :class:`ChessPuzzles` sorted by signature (stable, like the rating-sorted official set).
    """
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"n must be an integer >= 1; got {n!r}")
    if isinstance(signatures, str) or len(signatures) == 0:
        raise ValueError(f"signatures must be a non-empty sequence of strings like ('KRvK', 'KQvK'); "
                         f"got {signatures!r}")
    if not 0.0 <= black_fraction <= 1.0:
        raise ValueError(f"black_fraction must be in [0, 1]; got {black_fraction!r}")
    parsed = [parse_signature(s) for s in signatures]
    rng = np.random.default_rng(seed)
    counts = [n // len(parsed) + (i < n % len(parsed)) for i in range(len(parsed))]
    boards, moves, level, legal = [], [], [], []
    for lvl, ((att, dfn), want) in enumerate(zip(parsed, counts)):
        pieces = ([chess.Piece.from_symbol("K"), chess.Piece.from_symbol("k")]
                  + [chess.Piece.from_symbol(p) for p in att.replace("K", "", 1)]
                  + [chess.Piece.from_symbol(p.lower()) for p in dfn.replace("K", "", 1)])
        got, tried = 0, 0
        while got < want:
            if tried >= max_candidates:
                raise ValueError(f"found only {got} of {want} mate-in-one puzzles for {signatures[lvl]!r} in "
                                 f"{tried} positions; this material rarely mates in one (allowed: more material)")
            batch = max(256, 8 * (want - got))
            tried += batch
            for row in _candidates(att, dfn, batch, rng):
                if row[0] < 0:
                    continue
                board = chess.Board(None)
                board.set_piece_map({int(s): p for s, p in zip(row, pieces)})
                if not board.is_valid() or board.is_check():
                    continue
                mates, n_legal = mating_moves(board)
                if len(mates) != 1:
                    continue
                boards.append(board)
                moves.append(mates[0])
                level.append(lvl)
                legal.append(n_legal)
                got += 1
                if got == want:
                    break
    flip = rng.random(len(boards)) < black_fraction
    for i in np.flatnonzero(flip):
        boards[i] = boards[i].mirror()
        m = moves[i]
        moves[i] = chess.Move(chess.square_mirror(m.from_square), chess.square_mirror(m.to_square), m.promotion)
    out = encode(boards, moves, level, legal_moves=torch.tensor(legal), signatures=tuple(signatures))
    return out.to(device)


# -- the official on-disk format and the real (Lichess) path -------------------------------------------------
def write_chess(root: str | os.PathLike, puzzles: ChessPuzzles) -> Path:
    """Write ``chess_data/{data,targets,who_moves,rating}.pth`` under ``root`` as ``make_chess.py`` does.

    ``targets.pth`` holds the on-disk orientation (rows = ranks 1..8); the official loader flips it back to
    the layout of ``puzzles.targets``. ``rating.pth`` holds ``puzzles.difficulty`` (n, 1). Returns the folder.
    """
    folder = Path(root) / "chess_data"
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(puzzles.inputs.float().cpu().contiguous(), folder / "data.pth")
    torch.save(puzzles.targets.long().cpu().flip(1).contiguous(), folder / "targets.pth")
    torch.save(puzzles.who_moves.float().cpu().reshape(-1, 1).contiguous(), folder / "who_moves.pth")
    torch.save(puzzles.difficulty.float().cpu().reshape(-1, 1).contiguous(), folder / "rating.pth")
    return folder


def read_chess(root: str | os.PathLike, idx_start: int | None = None, idx_end: int | None = None, *,
               device="cpu") -> tuple[Tensor, Tensor, Tensor]:
    """Read ``chess_data`` as the official ``ChessPuzzleDataset`` serves it: (inputs, targets, who_moves).

    ``idx_start``/``idx_end`` slice the rating-sorted set (official defaults: train [0, 600000), test
    [600000, 700000)); None reads from the start / to the end. Targets get the loader's rank flip.
    """
    folder = Path(root) / "chess_data"
    part = slice(idx_start, idx_end)
    inputs = torch.load(folder / "data.pth", weights_only=True)[part]
    targets = torch.load(folder / "targets.pth", weights_only=True)[part].flip(1)
    who = torch.load(folder / "who_moves.pth", weights_only=True)[part]
    return inputs.to(device), targets.to(device), who.to(device)


LICHESS_COLUMNS = ("PuzzleId", "FEN", "Moves", "Rating", "RatingDeviation", "Popularity", "NbPlays", "Themes",
                   "GameUrl")


def lichess_puzzles(csv_path: str | os.PathLike, *, limit: int | None = None, device="cpu") -> ChessPuzzles:
    """The real dataset from the authors' ``deepthinking_lichess.csv`` (``make_chess.py``'s logic).

    Rows (no header, the 9 ``LICHESS_COLUMNS``) are sorted by rating with a stable sort; for each puzzle
    the first (opponent's) move is pushed and the second move is the answer. ``limit`` keeps the first
    (easiest) rows after sorting.
    """
    with open(csv_path, newline="") as fh:
        rows = [r for r in csv.reader(fh) if r]
    if any(len(r) != len(LICHESS_COLUMNS) for r in rows):
        raise ValueError(f"the Lichess CSV has {len(LICHESS_COLUMNS)} columns {LICHESS_COLUMNS}, no header")
    rows.sort(key=lambda r: float(r[3]))  # Python's sort is stable, like pandas' mergesort
    rows = rows[:limit]
    boards, moves = [], []
    for r in rows:
        board = chess.Board(r[1])
        first, answer = r[2].split(" ")[:2]
        board.push(chess.Move.from_uci(first))
        boards.append(board)
        moves.append(chess.Move.from_uci(answer))
    return encode(boards, moves, [float(r[3]) for r in rows]).to(device)
