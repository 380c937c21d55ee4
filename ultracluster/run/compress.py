"""Pseudo-gradient compression for the cross-site exchange: 32, 16, 8 or 4 bits.

int8 and 4-bit use symmetric per-block scales (blocks of 64 values, one fp32 scale each:
scale = max|x| / 127 or / 7); 4-bit values are packed two to a byte. Decoding returns fp32, so
peers accumulate in fp32. Worst-case error per value: half a quantisation step, scale / 2.
"""

from __future__ import annotations

import torch

BLOCK = 64


def encode(x: torch.Tensor, bits: int) -> list[torch.Tensor]:
    """`x` (1-D fp32) as the tensors to send."""
    if bits == 32:
        return [x.float()]
    if bits == 16:
        return [x.to(torch.bfloat16)]
    qmax = 127 if bits == 8 else 7
    pad = (-x.numel()) % BLOCK
    blocks = torch.cat([x.float(), x.new_zeros(pad)]).view(-1, BLOCK)
    scale = blocks.abs().amax(dim=1).clamp_min(1e-30) / qmax
    q = torch.round(blocks / scale[:, None]).clamp(-qmax, qmax).to(torch.int8).flatten()
    q = q[: x.numel() + (x.numel() % 2 if bits == 4 else 0)]  # the padding is not sent
    if bits == 8:
        return [q, scale]
    u = (q + 8).to(torch.uint8)  # 1..15
    packed = u[0::2] | (u[1::2] << 4)
    return [packed, scale]


def decode(parts: list[torch.Tensor], bits: int, numel: int) -> torch.Tensor:
    """Back to fp32 of length `numel`."""
    if bits in (32, 16):
        return parts[0].float()[:numel]
    scale = parts[1]
    if bits == 8:
        q = parts[0].float()
    else:
        packed = parts[0]
        lo = (packed & 0xF).to(torch.int16) - 8
        hi = (packed >> 4).to(torch.int16) - 8
        q = torch.stack([lo, hi], dim=1).flatten().float()
    q = torch.cat([q, q.new_zeros(scale.numel() * BLOCK - q.numel())])
    return (q.view(-1, BLOCK) * scale[:, None]).flatten()[:numel]


def max_error(x: torch.Tensor, bits: int) -> torch.Tensor:
    """The stated bound: half a step of each value's block."""
    if bits == 32:
        return torch.zeros_like(x)
    if bits == 16:
        return x.abs() * 2.0**-8
    qmax = 127 if bits == 8 else 7
    pad = (-x.numel()) % BLOCK
    blocks = torch.cat([x.float(), x.new_zeros(pad)]).view(-1, BLOCK)
    step = blocks.abs().amax(dim=1) / qmax
    return (step[:, None] / 2).expand(-1, BLOCK).flatten()[: x.numel()]


def nbytes(parts: list[torch.Tensor]) -> int:
    """Bytes of the tensors in `parts` (what an exchange of them sends)."""
    return sum(p.numel() * p.element_size() for p in parts)
