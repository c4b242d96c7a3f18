"""The official ``easy_to_hard_data`` loaders (installed ``--no-deps``) read the files we write, download=False."""

import ast
from pathlib import Path

import chess
import pytest
import torch

from interpbook.data.chess_puzzles import decode_boards, decode_move, mate_in_one_puzzles, write_chess
from interpbook.data.reasoning import mazes, prefix_sums, upsample_mazes, write_mazes, write_prefix_sums

pytestmark = pytest.mark.peer
e2h = pytest.importorskip("easy_to_hard_data")


def test_prefix_sum_dataset_reads_our_files(tmp_path):
    x, y = prefix_sums(100, 32, seed=0)
    write_prefix_sums(tmp_path, x, y)
    ds = e2h.PrefixSumDataset(str(tmp_path), num_bits=32, download=False)
    assert len(ds) == 100
    xi, yi = ds[7]
    assert xi.shape == (1, 32) and xi.dtype == torch.float32 and set(xi.unique().tolist()) <= {-0.5, 0.5}
    assert yi.shape == (32,) and yi.dtype == torch.long
    assert torch.equal(ds.inputs, x) and torch.equal(ds.targets, y)


@pytest.mark.parametrize("size,train", [(9, True), (13, False)])
def test_maze_dataset_reads_our_files(tmp_path, size, train):
    x, y = mazes(8, size, seed=1)
    write_mazes(tmp_path, size, x, y, train=train)
    ds = e2h.MazeDataset(str(tmp_path), train=train, size=size, download=False)
    side = 2 * (size + 1) + 4
    img, target = ds[0]
    assert len(ds) == 8 and img.shape == (3, side, side) and img.dtype == torch.float32
    assert target.shape == (side, side) and target.dtype == torch.long and set(target.unique().tolist()) == {0, 1}
    assert torch.equal(ds.inputs, upsample_mazes(x)) and torch.equal(ds.targets, upsample_mazes(y))


def test_chess_puzzle_dataset_reads_our_files(tmp_path):
    p = mate_in_one_puzzles(16, ("KRvK", "KQvK"), seed=3)
    write_chess(tmp_path, p)
    ds = e2h.ChessPuzzleDataset(str(tmp_path), idx_start=0, idx_end=16, download=False)
    board, target, who = ds[0]
    assert board.shape == (12, 8, 8) and target.shape == (8, 8) and target.dtype == torch.long and who.shape == (1,)
    assert torch.equal(ds.puzzles, p.inputs) and torch.equal(ds.targets, p.targets)
    assert torch.equal(ds.who_moves, p.who_moves)
    # what the official loader serves decodes to the mating move
    for b, t in zip(decode_boards(ds.puzzles, ds.who_moves), ds.targets):
        (move,) = decode_move(b, t)
        b.push(move)
        assert b.is_checkmate()


def official_board_to_str():
    """``chess_board_to_str`` from the installed ``easy_to_hard_plot.py``, compiled on its own: importing the
    module needs seaborn, reportlab and svglib, which the function does not use."""
    source = Path(e2h.__file__).with_name("easy_to_hard_plot.py")
    if not source.exists():
        pytest.skip("easy_to_hard_plot.py is not installed")
    tree = ast.parse(source.read_text())
    wanted = {"char_from_piece_vec", "chess_board_to_str"}
    module = ast.Module([n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in wanted], [])
    namespace = {}
    exec(compile(module, str(source), "exec"), namespace)
    return namespace["chess_board_to_str"]


def test_official_board_to_string_matches_our_encoding():
    to_str = official_board_to_str()
    p = mate_in_one_puzzles(10, ("KRBvKP",), seed=4)
    assert 0 < p.who_moves.sum() < 10
    for x, who, fen in zip(p.inputs, p.who_moves, p.fens):
        assert to_str(x, int(who)) == chess.Board(fen).board_fen()
