"""Secret codewords: random ±1 vectors (FedUA) and BCH codewords (FedUV-style), drawn on the device.

FedUA §3 (arXiv 2007.04618): each user draws a random binary vector and never reveals it. FedUV (arXiv
2104.08776) replaces them by error-correcting-code words so that distinct users are at least ``d_min`` apart.
The BCH code here is binary, narrow-sense and primitive, with non-systematic encoding ``b(x) = m(x) g(x)``
and the message ``[ID bits | random bits]`` [reconstruction]; GF(2^m) arithmetic is plain numpy.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from devicelab.federated.algo import stream_rng

# primitive polynomials of GF(2^m) as integers (bit i = coefficient of x^i)
PRIMITIVE_POLYNOMIALS = {3: 0b1011, 4: 0b10011, 5: 0b100101, 6: 0b1000011, 7: 0b10001001, 8: 0b100011101,
                         9: 0b1000010001, 10: 0b10000001001}  # fmt: skip


def bits_to_codeword(bits: np.ndarray) -> np.ndarray:
    """Bits {0, 1} -> codeword {+1, −1} (``v = 1 − 2b``), float32."""
    return (1.0 - 2.0 * np.asarray(bits, dtype=np.float32)).astype(np.float32)


def random_codeword(length: int, rng: np.random.Generator) -> np.ndarray:
    """A uniform random ±1 vector of ``length`` (FedUA §3: "random binary vectors")."""
    return bits_to_codeword(rng.integers(0, 2, size=length))


def secure_random_codeword(length: int) -> np.ndarray:
    """A uniform random ±1 vector from the OS's secure randomness (what a real device uses)."""
    return bits_to_codeword([secrets.randbits(1) for _ in range(length)])


def simulated_codeword(seed: int, pid: int, length: int) -> np.ndarray:
    """The codeword of partition ``pid`` in simulation: stream ("codeword", seed, pid), so runs reproduce and
    a resumed run re-derives it [reconstruction]."""
    return random_codeword(length, stream_rng(seed, 0, pid, "codeword"))


# ----------------------------------------------------------------------------------------------------------
# GF(2) polynomials as uint8 arrays, lowest degree first


def gf2_poly_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Product of two GF(2) polynomials (coefficients lowest degree first)."""
    return (np.convolve(np.asarray(a, np.int64), np.asarray(b, np.int64)) % 2).astype(np.uint8)


def gf2_poly_mod(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Remainder of ``a`` divided by ``b`` over GF(2) (lowest degree first, trimmed to len(b) − 1)."""
    r = np.array(a, dtype=np.uint8) % 2
    b = np.trim_zeros(np.asarray(b, np.uint8) % 2, "b")
    db = len(b) - 1
    for i in range(len(r) - 1, db - 1, -1):
        if r[i]:
            r[i - db : i + 1] ^= b
    return r[:db]


class GF2m:
    """GF(2^m) from a primitive polynomial: exp/log tables, multiplication of elements (ints)."""

    def __init__(self, m: int):
        if m not in PRIMITIVE_POLYNOMIALS:
            raise ValueError(f"GF(2^{m}): supported m are {sorted(PRIMITIVE_POLYNOMIALS)}")
        self.m, self.order = m, 2**m - 1
        self.exp = np.zeros(2 * self.order, dtype=np.int64)
        self.log = np.full(2**m, -1, dtype=np.int64)
        x = 1
        for i in range(self.order):
            self.exp[i] = self.exp[i + self.order] = x
            self.log[x] = i
            x <<= 1
            if x & (1 << m):
                x ^= PRIMITIVE_POLYNOMIALS[m]

    def mul(self, a: int, b: int) -> int:
        if a == 0 or b == 0:
            return 0
        return int(self.exp[self.log[a] + self.log[b]])

    def alpha(self, i: int) -> int:
        """α^i."""
        return int(self.exp[i % self.order])

    def minimal_polynomial(self, i: int) -> np.ndarray:
        """The minimal polynomial over GF(2) of α^i: the product of (x − α^j) over i's cyclotomic coset."""
        coset, j = [], i % self.order
        while j not in coset:
            coset.append(j)
            j = (2 * j) % self.order
        poly = [1]  # coefficients in GF(2^m), lowest degree first
        for j in coset:
            root = self.alpha(j)
            nxt = [0] * (len(poly) + 1)
            for d, c in enumerate(poly):  # (x + root) * poly; − = + in characteristic 2
                nxt[d + 1] ^= c
                nxt[d] ^= self.mul(c, root)
            poly = nxt
        if any(c not in (0, 1) for c in poly):
            raise ArithmeticError(f"minimal polynomial of α^{i} has coefficients outside GF(2)")
        return np.array(poly, dtype=np.uint8)

    def eval_gf2_poly(self, poly: np.ndarray, x: int) -> int:
        """Evaluate a GF(2) polynomial at the field element ``x`` (Horner)."""
        acc = 0
        for c in np.asarray(poly)[::-1]:
            acc = self.mul(acc, x) ^ int(c)
        return acc


@dataclass(frozen=True)
class BCHCode:
    """Binary narrow-sense primitive BCH(n, k), n = 2^m − 1, with non-systematic encoding b(x) = m(x) g(x).

    ``t`` (corrected errors) is the smallest whose generator has degree n − k; ``d_min`` ≥ 2t + 1.
    """

    n: int
    k: int

    def __post_init__(self) -> None:
        m = int(round(math.log2(self.n + 1)))
        if 2**m - 1 != self.n:
            raise ValueError(f"BCH: n={self.n} is not 2^m − 1")
        if not 0 < self.k < self.n:
            raise ValueError(f"BCH({self.n}, {self.k}): need 0 < k < n")
        _ = self.generator  # raises when no t gives this k

    @cached_property
    def field(self) -> GF2m:
        return GF2m(int(round(math.log2(self.n + 1))))

    @cached_property
    def _design(self) -> tuple[np.ndarray, int]:
        g, used, t = np.array([1], np.uint8), set(), 0
        while len(g) - 1 < self.n - self.k:
            t += 1
            for i in (2 * t - 1, 2 * t):
                mp = self.field.minimal_polynomial(i)
                key = tuple(mp.tolist())
                if key not in used:
                    used.add(key)
                    g = gf2_poly_mul(g, mp)
        if len(g) - 1 != self.n - self.k:
            raise ValueError(f"BCH({self.n}, {self.k}) does not exist (generator degrees skip n − k)")
        return g, t

    @property
    def generator(self) -> np.ndarray:
        """g(x), lowest degree first, degree n − k."""
        return self._design[0]

    @property
    def t(self) -> int:
        return self._design[1]

    @property
    def designed_distance(self) -> int:
        return 2 * self.t + 1

    @cached_property
    def generator_matrix(self) -> np.ndarray:
        """(k, n) matrix whose row i is x^i g(x): a codeword is ``message @ G mod 2``."""
        G = np.zeros((self.k, self.n), dtype=np.uint8)
        for i in range(self.k):
            G[i, i : i + len(self.generator)] = self.generator
        return G

    def encode(self, message: np.ndarray) -> np.ndarray:
        """Codeword bits b = m(x) g(x) for message bits m (length k, lowest degree first)."""
        message = np.asarray(message, dtype=np.int64)
        if message.shape != (self.k,):
            raise ValueError(
                f"BCH({self.n}, {self.k}): message of shape {message.shape}, expected ({self.k},)"
            )
        return ((message @ self.generator_matrix.astype(np.int64)) % 2).astype(np.uint8)

    def syndromes(self, bits: np.ndarray) -> list[int]:
        """S_j = b(α^j), j = 1..2t (all zero for a codeword)."""
        return [self.field.eval_gf2_poly(bits, self.field.alpha(j)) for j in range(1, 2 * self.t + 1)]


def id_bits(user_id: int, k_id: int) -> np.ndarray:
    """The ``k_id`` bits of a server-assigned ID (least significant first)."""
    if not 0 <= user_id < 2**k_id:
        raise ValueError(f"ID {user_id} does not fit in {k_id} bits")
    return np.array([(user_id >> b) & 1 for b in range(k_id)], dtype=np.uint8)


def bch_message(user_id: int, k: int, k_id: int, rng: np.random.Generator) -> np.ndarray:
    """The message ``[random (k − k_id) bits | ID (k_id bits)]`` in polynomial order: the ID sits on the
    highest-degree coefficients, the random bits below [reconstruction of FedUV's ID + random bits]."""
    if k_id > k:
        raise ValueError(f"k_id={k_id} > k={k}: the IDs do not fit in the message")
    return np.concatenate([rng.integers(0, 2, size=k - k_id).astype(np.uint8), id_bits(user_id, k_id)])


def id_width(max_users: int) -> int:
    """k_id = ⌈log2 N_max⌉ bits of a user ID."""
    return max(1, math.ceil(math.log2(max(2, max_users))))


def bch_codeword(code: BCHCode, user_id: int, max_users: int, rng: np.random.Generator) -> np.ndarray:
    """A user's ±1 BCH codeword from its server-assigned ID and its own random bits."""
    return bits_to_codeword(code.encode(bch_message(user_id, code.k, id_width(max_users), rng)))


def id_determined_positions(code: BCHCode, max_users: int) -> np.ndarray:
    """Codeword positions whose bit depends on the ID alone (the server can compute them): the columns of
    G with no contribution from a random-bit row."""
    k_random = code.k - id_width(max_users)
    return np.flatnonzero(code.generator_matrix[:k_random].sum(axis=0) == 0)
