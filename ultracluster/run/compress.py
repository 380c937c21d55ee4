"""Pseudo-gradient compression for the cross-site exchange: 32, 16, 8 or 4 bits.

int8 and 4-bit use symmetric per-block scales (blocks of 64 values, one fp32 scale each:
scale = max|x| / 127 or / 7); 4-bit values are packed two to a byte. Decoding returns fp32, so
peers accumulate in fp32. Worst-case error per value: half a quantisation step, scale / 2.
"""

from __future__ import annotations

import torch

BLOCK = 64


def padded(numel: int) -> int:
    """`numel` rounded up to whole blocks: the length of an encoder's or decoder's scratch."""
    return -(-numel // BLOCK) * BLOCK


def encode(x: torch.Tensor, bits: int, scratch: torch.Tensor | None = None
           ) -> list[torch.Tensor]:
    """`x` (1-D fp32) as the tensors to send. With `scratch` (fp32, at least `padded` long)
    the quantisation works in it, in place: the same values, without the model-sized
    temporaries whose first-touched pages cost more than the arithmetic."""
    if bits == 32:
        return [x.float()]
    if bits == 16:
        return [x.to(torch.bfloat16)]
    qmax = 127 if bits == 8 else 7
    if scratch is None:
        scratch = torch.empty(padded(x.numel()))
    work = scratch[: padded(x.numel())]
    work[: x.numel()].copy_(x)
    work[x.numel():].zero_()
    blocks = work.view(-1, BLOCK)
    # max |x| per block, as max(max x, -min x): the same value, without an |x| temporary
    scale = torch.maximum(blocks.amax(dim=1), -blocks.amin(dim=1)).clamp_min(1e-30) / qmax
    q = blocks.div_(scale[:, None]).round_().clamp_(-qmax, qmax).to(torch.int8).flatten()
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


def decode_add(parts: list[torch.Tensor], bits: int, out: torch.Tensor, *, alpha: float,
               scratch: torch.Tensor) -> None:
    """``out += alpha * decode(parts)``, the 8-bit path in place in `scratch` (fp32, at least
    `out` rounded up to whole blocks): an exchange decodes a model's worth of values per site,
    and fresh model-sized temporaries cost more than the arithmetic (their pages are touched
    for the first time)."""
    if bits != 8:
        out.add_(decode(parts, bits, out.numel()), alpha=alpha)
        return
    q, scale = parts
    s = scratch[: scale.numel() * BLOCK]  # = padded(out.numel())
    s[: q.numel()].copy_(q)
    s[q.numel():].zero_()
    s.view(-1, BLOCK).mul_(scale[:, None])
    out.add_(s[: out.numel()], alpha=alpha)


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
