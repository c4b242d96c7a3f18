"""Small image classifiers of other families than :class:`~interpbook.models.SmallCNN`: a ResNet and a ViT.

Both take ``[batch, C, H, W]`` images and return ``[batch, classes]`` logits; they train in seconds on 16×16
digits on a CPU and exist so that chapters can compare architectures (e.g. adversarial transfer between
families) without torchvision or timm.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class BasicBlock(nn.Module):
    """He et al.'s (2016) basic block: two 3×3 conv–BN layers, identity or 1×1-conv shortcut, ReLU after the sum."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: Tensor) -> Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class SmallResNet(nn.Module):
    """A CIFAR-style ResNet shrunk for small images: a 3×3 stem, one basic block per stage, global average pool.

    Args:
        in_shape: ``(C, H, W)`` of one input.
        widths: channels of each stage; every stage after the first halves the resolution.
        classes: number of outputs.
    """

    def __init__(self, in_shape: tuple[int, int, int], widths=(16, 32, 64), classes: int = 10):
        super().__init__()
        if len(in_shape) != 3:
            raise ValueError(f"in_shape must be (C, H, W), got {in_shape}")
        if not widths:
            raise ValueError("widths must list at least one stage")
        self.stem = nn.Sequential(nn.Conv2d(in_shape[0], widths[0], 3, padding=1, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU())
        blocks, c = [], widths[0]
        for i, w in enumerate(widths):
            blocks.append(BasicBlock(c, w, stride=1 if i == 0 else 2))
            c = w
        self.stages = nn.Sequential(*blocks)
        self.head = nn.Linear(c, classes)

    def forward(self, x: Tensor) -> Tensor:  # [batch, C, H, W] -> [batch, classes]
        return self.head(self.stages(self.stem(x)).mean(dim=(2, 3)))


class TinyViT(nn.Module):
    """A Vision Transformer (Dosovitskiy et al., 2021) in miniature: patch embedding, a class token, learned
    position embeddings, pre-LN encoder blocks (``nn.TransformerEncoderLayer``), a linear head on the class token.

    Args:
        in_shape: ``(C, H, W)``; ``H`` and ``W`` must be multiples of ``patch``.
        patch: side of the square patches; ``dim``: token width; ``depth``: encoder blocks; ``heads``: attention
            heads (``dim`` divisible by it); ``mlp``: hidden width of each block's MLP.
    """

    def __init__(self, in_shape: tuple[int, int, int], patch: int = 4, dim: int = 32, depth: int = 2, heads: int = 4,
                 mlp: int = 64, classes: int = 10):
        super().__init__()
        if len(in_shape) != 3:
            raise ValueError(f"in_shape must be (C, H, W), got {in_shape}")
        c, h, w = in_shape
        if h % patch or w % patch:
            raise ValueError(f"image sides {h}×{w} must be multiples of the patch size {patch}")
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be divisible by heads ({heads})")
        self.embed = nn.Conv2d(c, dim, patch, stride=patch)
        n = (h // patch) * (w // patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, n + 1, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, mlp, dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x: Tensor) -> Tensor:  # [batch, C, H, W] -> [batch, classes]
        tokens = self.embed(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls.expand(len(x), -1, -1), tokens], 1) + self.pos
        return self.head(self.norm(self.encoder(tokens)[:, 0]))
