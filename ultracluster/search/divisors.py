"""Divisors by factorisation, so planning costs the same for 2,048 sequences or 10^15.

``n`` is factorised by trial division by the primes below 1,000, then Pollard's rho (Brent's
variant) with a deterministic Miller-Rabin test (the first 13 primes as bases are exact below
3.3 x 10^24, Sorenson and Webster 2015; the first 12 only below 3.18 x 10^23: their smallest
strong pseudoprime is 318,665,857,834,031,151,167,461). The divisors are then built from the
prime powers, keeping only those up to `limit`: the work grows with the number of divisors,
never with ``n``.
"""

from __future__ import annotations

import math
import random
from functools import lru_cache

_SMALL_PRIMES = tuple(p for p in range(2, 1000) if all(p % q for q in range(2, math.isqrt(p) + 1)))
_MR_BASES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41)
MAX_N = 3 * 10**24
"""Above this the Miller-Rabin bases are no longer proven exact."""


def _is_prime(n: int) -> bool:
    if n < 2:
        return False
    for p in _MR_BASES:
        if n % p == 0:
            return n == p
    d, r = n - 1, 0
    while d % 2 == 0:
        d //= 2
        r += 1
    for a in _MR_BASES:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def _rho(n: int, rng: random.Random) -> int:
    """A non-trivial factor of the odd composite `n` (Brent 1980)."""
    while True:
        # m: products accumulated between gcds (Brent's batching; any size is correct)
        y, c, m = rng.randrange(1, n), rng.randrange(1, n), 128
        g = r = q = 1
        x = ys = y
        while g == 1:
            x = y
            for _ in range(r):
                y = (y * y + c) % n
            k = 0
            while k < r and g == 1:
                ys = y
                for _ in range(min(m, r - k)):
                    y = (y * y + c) % n
                    q = q * abs(x - y) % n
                g = math.gcd(q, n)
                k += m
            r *= 2
        if g == n:
            g = 1
            while g == 1:
                ys = (ys * ys + c) % n
                g = math.gcd(abs(x - ys), n)
        if g != n:
            return g


@lru_cache(maxsize=256)
def factorise(n: int) -> tuple[tuple[int, int], ...]:
    """Prime factors of `n` (1 <= n <= `MAX_N`) as sorted (prime, exponent) pairs."""
    if not 1 <= n <= MAX_N:
        raise ValueError(f"factorise: {n} is outside [1, {MAX_N}]")
    found: dict[int, int] = {}
    for p in _SMALL_PRIMES:
        while n % p == 0:
            found[p] = found.get(p, 0) + 1
            n //= p
    rng = random.Random(n)  # deterministic: the same n always takes the same path
    todo = [n] if n > 1 else []
    while todo:
        m = todo.pop()
        if _is_prime(m):
            found[m] = found.get(m, 0) + 1
        else:
            f = _rho(m, rng)
            todo += [f, m // f]
    return tuple(sorted(found.items()))


def divisors(n: int, *, limit: int | None = None) -> list[int]:
    """The divisors of `n` up to `limit` (all of them by default), ascending."""
    cap = n if limit is None else min(n, limit)
    out = [1]
    for p, e in factorise(n):
        out = [d * p**k for d in out for k in range(e + 1) if d * p**k <= cap]
    return sorted(out)


def num_divisors(n: int) -> int:
    """How many divisors `n` has (from its factorisation)."""
    return math.prod(e + 1 for _, e in factorise(n))
