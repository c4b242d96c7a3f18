"""Easy-to-hard datasets: known answers and properties checked by independent plain-Python code."""

from collections import deque

import chess
import numpy as np
import pytest
import torch

from interpbook.data.chess_puzzles import (
    board_tensors,
    decode_boards,
    decode_move,
    flip_black_to_move,
    lichess_puzzles,
    mate_in_one_puzzles,
    move_targets,
    parse_signature,
    read_chess,
    write_chess,
)
from interpbook.data.reasoning import (
    downsample_mazes,
    is_perfect_maze,
    is_solution_path,
    maze_endpoints,
    maze_stats,
    mazes,
    prefix_sums,
    read_mazes,
    read_prefix_sums,
    solve_grids,
    upsample_mazes,
    write_mazes,
    write_prefix_sums,
)


# -- prefix sums ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n,bits", [(300, 12), (256, 8), (500, 40)])
def test_prefix_sum_labels_and_uniqueness(n, bits):
    x, y = prefix_sums(n, bits, seed=3)
    assert x.shape == (n, 1, bits) and x.dtype == torch.float32 and y.shape == (n, bits) and y.dtype == torch.long
    assert set(x.unique().tolist()) == {-0.5, 0.5}
    strings = (x[:, 0] + 0.5).long().tolist()
    for s, t in zip(strings, y.tolist()):
        running, expect = 0, []
        for b in s:
            running ^= b
            expect.append(running)
        assert t == expect
    assert len({tuple(s) for s in strings}) == n  # (256, 8): every 8-bit string exactly once


def test_prefix_sums_seeds_device_and_errors():
    a, b = prefix_sums(50, 30, seed=1), prefix_sums(50, 30, seed=1)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], prefix_sums(50, 30, seed=2)[0])
    assert prefix_sums(5, 6, device="meta")[0].device.type == "meta"
    with pytest.raises(ValueError, match="n <= 2\\*\\*bits = 16"):
        prefix_sums(17, 4)
    prefix_sums(17, 4, unique=False)
    for bad in ({"n": 0, "bits": 4}, {"n": 3, "bits": 0}, {"n": 2.5, "bits": 4}):
        with pytest.raises(ValueError, match="must be an integer >= 1"):
            prefix_sums(**bad)


# -- mazes ----------------------------------------------------------------------------------------------------
def bfs_path(open_, start, end):
    """Plain-Python BFS with parent pointers on a pixel grid; returns the set of path pixels."""
    parent, queue = {start: None}, deque([start])
    while queue:
        p = queue.popleft()
        for dr, dk in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            q = (p[0] + dr, p[1] + dk)
            if 0 <= q[0] < len(open_) and 0 <= q[1] < len(open_[0]) and open_[q[0]][q[1]] and q not in parent:
                parent[q] = p
                queue.append(q)
    path, p = set(), end
    while p is not None:
        path.add(p)
        p = parent[p]
    return path


@pytest.mark.parametrize("size", [3, 5, 9, 13])
def test_mazes_are_spanning_trees_and_the_label_is_the_path(size):
    inputs, targets = mazes(40, size, seed=size)
    c, side = (size + 1) // 2, size + 2
    assert inputs.shape == (40, 3, side, side) and targets.shape == (40, side, side)
    assert inputs.dtype == torch.float32 and targets.dtype == torch.long
    starts, ends = maze_endpoints(inputs)
    for img, tgt, s, e in zip(inputs, targets, starts.tolist(), ends.tolist()):
        open_ = (img.amax(0) > 0).tolist()
        cells = [(2 * r + 1, 2 * k + 1) for r in range(c) for k in range(c)]
        assert all(open_[r][k] for r, k in cells)
        # walls: every pixel with two even coordinates, and the border, is closed; passages sit between cells
        assert not any(open_[r][k] for r in range(0, side, 2) for k in range(0, side, 2))
        passages = sum(open_[r][k] for r in range(side) for k in range(side) if (r + k) % 2 == 1)
        assert passages == c * c - 1
        assert set(cells) <= _flood(open_, cells[0])  # connected, with c^2 - 1 edges: a spanning tree
        assert s != e and s[0] % 2 == 1 and s[1] % 2 == 1 and e[0] % 2 == 1 and e[1] % 2 == 1
        assert img[:, s[0], s[1]].tolist() == [0, 1, 0] and img[:, e[0], e[1]].tolist() == [1, 0, 0]
        white = (img == 1).all(0)
        assert int(white.sum()) == sum(map(sum, open_)) - 2
        label = {(int(r), int(k)) for r, k in torch.nonzero(tgt).tolist()}
        assert label == bfs_path(open_, tuple(s), tuple(e))


def _flood(open_, start):
    seen, queue = {start}, deque([start])
    while queue:
        p = queue.popleft()
        for dr, dk in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            q = (p[0] + dr, p[1] + dk)
            if open_[q[0]][q[1]] and q not in seen:
                seen.add(q)
                queue.append(q)
    return seen


@pytest.mark.parametrize("size,side", [(9, 24), (13, 32), (59, 124)])
def test_upsampled_side_is_4c_plus_4(size, side):
    raw_x, raw_y = mazes(3, size, seed=1)
    up_x, up_y = mazes(3, size, seed=1, upsample=True)
    assert up_x.shape == (3, 3, side, side) and up_y.shape == (3, side, side)
    assert torch.equal(up_x, upsample_mazes(raw_x)) and torch.equal(downsample_mazes(up_x), raw_x)
    assert torch.equal(downsample_mazes(up_y), raw_y)
    assert up_x[..., 0, :].abs().sum() == 0 and up_x[..., -1].abs().sum() == 0  # the zero border
    assert torch.equal(up_x[..., 1:3, 1:3], raw_x[..., :1, :1].expand(-1, -1, 2, 2))  # each pixel -> a 2x2 block


def test_maze_seeds_and_errors():
    a, b = mazes(10, 11, seed=4), mazes(10, 11, seed=4)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], mazes(10, 11, seed=5)[0])
    for bad in (8, 1, 9.5, True, "9"):
        with pytest.raises((ValueError, TypeError), match="odd integer >= 3"):
            mazes(2, bad)
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        mazes(0, 9)


def test_perfect_maze_and_path_checks_catch_defects():
    x, y = mazes(6, 9, seed=7)
    assert is_perfect_maze(x).all() and is_solution_path(x, y).all()
    assert is_perfect_maze(upsample_mazes(x)).all() and is_solution_path(upsample_mazes(x), upsample_mazes(y)).all()
    open_ = x.amax(1) > 0
    bad = x.clone()
    closed = [(r, k) for r in range(1, 10) for k in range(1, 10) if (r + k) % 2 and not open_[0, r, k]]
    bad[0, :, closed[0][0], closed[0][1]] = 1  # one wall too few: a cycle
    opened = [(r, k) for r in range(1, 10) for k in range(1, 10) if (r + k) % 2 and open_[1, r, k]]
    bad[1, :, opened[0][0], opened[0][1]] = 0  # one wall too many: disconnected
    bad[2, :, 2, 2] = 1  # a corner pixel opened
    assert is_perfect_maze(bad).tolist() == [False, False, False, True, True, True]
    y_bad = y.clone()
    s, e = maze_endpoints(x)
    inner = [p for p in torch.nonzero(y[0]).tolist() if p not in (s[0].tolist(), e[0].tolist())]
    y_bad[0, inner[0][0], inner[0][1]] = 0  # a gap in the path
    free = [p for p in torch.nonzero(open_[1] & (y[1] == 0)).tolist()]
    y_bad[1, free[0][0], free[0][1]] = 1  # a stray pixel
    y_bad[2, 0, 0] = 1  # a wall pixel
    assert is_solution_path(x, y_bad).tolist() == [False, False, False, True, True, True]


def test_solve_grids_shortest_path_and_unreachable():
    open_ = np.ones((1, 7, 7), dtype=bool)  # an open field: many shortest paths, any one of length 7
    path = solve_grids(open_, np.array([[0, 0]]), np.array([[3, 3]]))
    assert path.sum() == 7 and path[0, 0, 0] and path[0, 3, 3]
    walled = np.ones((1, 5, 5), dtype=bool)
    walled[0, 2, :] = False
    with pytest.raises(ValueError, match="no path"):
        solve_grids(walled, np.array([[0, 0]]), np.array([[4, 4]]))


def test_maze_stats_known_answer():
    # 2 x 2 cells shaped like a U: (0,0)-(1,0)-(1,1) and (0,0)-(0,1); start (0,1), end (1,1)
    grid = torch.zeros(1, 3, 5, 5)
    for r, k in ((1, 1), (1, 2), (1, 3), (2, 1), (3, 1), (3, 2), (3, 3)):
        grid[0, :, r, k] = 1
    grid[0, :, 1, 3] = torch.tensor([0.0, 1, 0])
    grid[0, :, 3, 3] = torch.tensor([1.0, 0, 0])
    target = torch.from_numpy(solve_grids((grid.amax(1) > 0).numpy(), np.array([[1, 3]]), np.array([[3, 3]])))
    stats = maze_stats(grid, target.long())
    assert stats.path_cells.tolist() == [4] and stats.path_steps.tolist() == [3]
    assert stats.dead_ends.tolist() == [2] and stats.junctions.tolist() == [0]
    up = maze_stats(upsample_mazes(grid), upsample_mazes(target.long()))
    assert up.path_cells.tolist() == [4]


# -- official formats -----------------------------------------------------------------------------------------
def test_official_format_round_trips(tmp_path):
    x, y = prefix_sums(64, 20, seed=0)
    data = write_prefix_sums(tmp_path, x, y)
    assert data == tmp_path / "prefix_sums_data" / "20_data.pth"
    raw = torch.load(data)
    assert raw.shape == (64, 20) and raw.dtype == torch.float32 and set(raw.unique().tolist()) == {0.0, 1.0}
    x2, y2 = read_prefix_sums(tmp_path, 20)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    mi, mt = mazes(6, 9, seed=0)
    folder = write_mazes(tmp_path, 9, mi, mt, train=False)
    assert folder.name == "maze_data_test_9"
    assert np.load(folder / "inputs.npy").shape == (6, 3, 24, 24)
    assert np.load(folder / "solutions.npy").shape == (6, 24, 24)
    ri, rt = read_mazes(tmp_path, 9, train=False)
    assert torch.equal(ri, upsample_mazes(mi)) and torch.equal(rt, upsample_mazes(mt)) and rt.dtype == torch.long
    with pytest.raises(ValueError, match="mazes of size 9"):
        write_mazes(tmp_path, 9, mazes(2, 11)[0], mazes(2, 11)[1])


# -- chess ----------------------------------------------------------------------------------------------------
def official_board_tensor(placement, black_moves):
    """The board layout as make_chess.py documents it, parsed from the FEN placement without python-chess."""
    grid = [[None] * 8 for _ in range(8)]
    for i, rank_str in enumerate(placement.split("/")):
        f = 0
        for ch in rank_str:
            if ch.isdigit():
                f += int(ch)
            else:
                grid[7 - i][f] = ch
                f += 1
    order = "kqbnrpKQBNRP" if black_moves else "KQBNRPkqbnrp"
    return torch.tensor([[[float(grid[r][f] == p) for f in range(8)] for r in range(8)] for p in order])


def test_encoding_known_answers():
    start = chess.Board()
    t = board_tensors([start])[0]
    assert torch.equal(t, official_board_tensor(start.board_fen(), False))
    assert t[0, 0, 4] == 1 and t[5, 1].sum() == 8 and t[6, 7, 4] == 1  # white K e1, white pawns rank 2, black k e8
    start.push_san("e4")
    t = board_tensors([start])[0]  # black to move: black pieces first
    assert t[0, 7, 4] == 1 and t[11, 3, 4] == 1 and t[11, 1].sum() == 7
    # the official repository's example figure: Qf3xf7 is drawn on rows 1 and 5 (rank 7 and 3) of column f
    target = move_targets([chess.Move.from_uci("f3f7")])[0]
    assert torch.nonzero(target).tolist() == [[1, 5], [5, 5]]
    assert torch.nonzero(move_targets([chess.Move.from_uci("f3f7")], loader=False)[0]).tolist() == [[2, 5], [6, 5]]
    board = chess.Board("r5k1/1p3ppp/p7/4r3/3q2n1/5Q2/PP4PP/RN3R1K w - - 0 1")
    assert decode_move(board, target) == [chess.Move.from_uci("f3f7")]
    assert decode_move(board, torch.zeros(8, 8)) == []


def test_mate_in_one_puzzles_are_unique_mates_and_round_trip():
    p = mate_in_one_puzzles(60, ("KRvK", "KQvK", "KRBvKP"), seed=0)
    assert p.inputs.shape == (60, 12, 8, 8) and p.targets.shape == (60, 8, 8) and p.targets.dtype == torch.long
    assert p.who_moves.shape == (60, 1) and 0 < p.who_moves.sum() < 60
    assert p.difficulty.tolist() == sorted(p.difficulty.tolist())
    assert p.difficulty.long().bincount().tolist() == [20] * 3
    assert (p.targets.flatten(1).sum(1) == 2).all()
    for board, fen, x, who, target, uci in zip(decode_boards(p.inputs, p.who_moves), p.fens, p.inputs,
                                               p.who_moves, p.targets, p.moves):
        ref = chess.Board(fen)
        assert board.board_fen() == ref.board_fen() and board.turn == ref.turn  # tensor <-> FEN
        assert torch.equal(x, official_board_tensor(ref.board_fen(), bool(who)))
        assert ref.is_valid() and not ref.is_check()
        mates = []
        for move in list(ref.legal_moves):
            ref.push(move)
            if ref.is_checkmate():
                mates.append(move.uci())
            ref.pop()
        assert mates == [uci]  # exactly one mating move, and it is the label
        assert [m.uci() for m in decode_move(board, target)] == [uci]
    again = mate_in_one_puzzles(60, ("KRvK", "KQvK", "KRBvKP"), seed=0)
    assert again.fens == p.fens and torch.equal(again.inputs, p.inputs)


def test_flip_black_to_move_is_the_mirrored_white_puzzle():
    p = mate_in_one_puzzles(20, ("KQvK",), seed=1, black_fraction=1.0)
    fx, ft = flip_black_to_move(p.inputs, p.targets, p.who_moves)
    boards = [chess.Board(f).mirror() for f in p.fens]
    moves = [chess.Move.from_uci(u) for u in p.moves]
    mirrored = [chess.Move(chess.square_mirror(m.from_square), chess.square_mirror(m.to_square)) for m in moves]
    assert torch.equal(fx, board_tensors(boards)) and torch.equal(ft, move_targets(mirrored))


def test_chess_format_round_trip(tmp_path):
    p = mate_in_one_puzzles(12, ("KRvK", "KQvK"), seed=2)
    folder = write_chess(tmp_path, p)
    on_disk = torch.load(folder / "targets.pth")
    assert torch.equal(on_disk, move_targets([chess.Move.from_uci(u) for u in p.moves], loader=False))
    assert torch.load(folder / "who_moves.pth").shape == (12, 1) and torch.load(folder / "rating.pth").shape == (12, 1)
    x, t, w = read_chess(tmp_path)
    assert torch.equal(x, p.inputs) and torch.equal(t, p.targets) and torch.equal(w, p.who_moves)
    assert torch.equal(read_chess(tmp_path, 3, 7)[0], p.inputs[3:7])


def test_lichess_path_on_a_local_stand_in(tmp_path):
    rows = [  # PuzzleId, FEN, Moves (opponent's move first), Rating, RatingDeviation, Popularity, NbPlays, Themes, Url
        "s1,r1bqkbnr/pppp1ppp/2n5/4p2Q/2B1P3/8/PPPP1PPP/RNB1K1NR b KQkq - 3 3,g8f6 h5f7,900,75,90,100,mateIn1,u",
        "f1,rnbqkbnr/pppp1ppp/8/4p3/8/5P2/PPPPP1PP/RNBQKBNR w KQkq - 0 2,g2g4 d8h4,600,75,90,100,mateIn1,u",
        "f2,rnbqkbnr/pppp1ppp/8/4p3/8/5P2/PPPPP1PP/RNBQKBNR w KQkq - 0 2,g2g4 d8h4,900,75,90,100,mateIn1,u2",
    ]
    csv_path = tmp_path / "deepthinking_lichess.csv"
    csv_path.write_text("\n".join(rows) + "\n")
    p = lichess_puzzles(csv_path)
    assert p.difficulty.tolist() == [600.0, 900.0, 900.0] and p.moves == ["d8h4", "h5f7", "d8h4"]  # stable sort
    assert p.who_moves.flatten().tolist() == [1.0, 0.0, 1.0]
    for board, target in zip(decode_boards(p.inputs, p.who_moves), p.targets):
        (move,) = decode_move(board, target)
        board.push(move)
        assert board.is_checkmate()
    assert len(lichess_puzzles(csv_path, limit=1)) == 1
    csv_path.write_text("a,b,c\n")
    with pytest.raises(ValueError, match="9 columns"):
        lichess_puzzles(csv_path)


def test_chess_errors():
    assert parse_signature("krbvkp") == ("KRB", "KP")
    for bad in ("KRK", "KRvQ", "KKvK", "KXvK", "vK"):
        with pytest.raises(ValueError, match="material signature"):
            parse_signature(bad)
    with pytest.raises(ValueError, match="n must be"):
        mate_in_one_puzzles(0)
    with pytest.raises(ValueError, match="black_fraction"):
        mate_in_one_puzzles(2, black_fraction=1.5)
    with pytest.raises(ValueError, match="non-empty sequence"):
        mate_in_one_puzzles(2, "KRvK")
    with pytest.raises(ValueError, match="rarely mates in one"):
        mate_in_one_puzzles(1, ("KvK",), max_candidates=300)
    with pytest.raises(ValueError, match="more than one piece"):
        decode_boards(torch.ones(1, 12, 8, 8), torch.zeros(1, 1))
