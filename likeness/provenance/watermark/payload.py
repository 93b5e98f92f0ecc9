"""Payload bits, CRC-16 check bits and a rate-1/3 convolutional code with soft Viterbi.

Pure functions: no I/O. 64 information bits (48-bit content id + 16-bit key id) + 16 CRC
bits + 6 zero tail bits -> 86 input bits -> 258 coded bits. The code is the LTE K=7
rate-1/3 code (generators 133, 171, 165 octal), free distance 15: maximum-likelihood
decoding corrects any 7 hard errors and, with soft values, far more scattered noise.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from functools import cache

import numpy as np

CONTENT_BITS = 48
KEY_BITS = 16
INFO_BITS = CONTENT_BITS + KEY_BITS
CRC_BITS = 16
CONSTRAINT = 7
GENERATORS = (0o133, 0o171, 0o165)
TAIL = CONSTRAINT - 1
MESSAGE_BITS = INFO_BITS + CRC_BITS
CODED_BITS = (MESSAGE_BITS + TAIL) * len(GENERATORS)
GUARANTEED_CORRECTABLE = 7  # (d_free - 1) // 2 with d_free = 15


@dataclass(frozen=True)
class Payload:
    """What the watermark carries: a 48-bit content id and the 16-bit id of the key."""

    content_id: int
    key_id: int

    def __post_init__(self) -> None:
        if not 0 <= self.content_id < 1 << CONTENT_BITS:
            raise ValueError(f"content_id must fit in {CONTENT_BITS} bits")
        if not 0 <= self.key_id < 1 << KEY_BITS:
            raise ValueError(f"key_id must fit in {KEY_BITS} bits")

    @classmethod
    def random(cls, key_id: int) -> Payload:
        return cls(secrets.randbits(CONTENT_BITS), key_id)

    def to_int(self) -> int:
        return (self.content_id << KEY_BITS) | self.key_id

    @classmethod
    def from_int(cls, value: int) -> Payload:
        return cls(value >> KEY_BITS, value & ((1 << KEY_BITS) - 1))

    def hex(self) -> str:
        return f"{self.to_int():016x}"

    @classmethod
    def from_hex(cls, text: str) -> Payload:
        value = int(text, 16)
        if value >= 1 << INFO_BITS:
            raise ValueError("payload hex must be at most 16 hex digits")
        return cls.from_int(value)

    def bits(self) -> np.ndarray:
        return int_to_bits(self.to_int(), INFO_BITS)


def int_to_bits(value: int, n: int) -> np.ndarray:
    """Most significant bit first, as uint8 0/1."""
    return np.array([(value >> (n - 1 - i)) & 1 for i in range(n)], dtype=np.uint8)


def bits_to_int(bits: np.ndarray) -> int:
    value = 0
    for bit in np.asarray(bits, dtype=np.uint8):
        value = (value << 1) | int(bit)
    return value


def crc16(bits: np.ndarray) -> np.ndarray:
    """CRC-16/CCITT (polynomial 0x1021, init 0xFFFF) over a bit string; 16 bits out."""
    reg = 0xFFFF
    for bit in np.asarray(bits, dtype=np.uint8):
        top = ((reg >> 15) & 1) ^ int(bit)
        reg = (reg << 1) & 0xFFFF
        if top:
            reg ^= 0x1021
    return int_to_bits(reg, CRC_BITS)


def message_bits(payload: Payload) -> np.ndarray:
    info = payload.bits()
    return np.concatenate([info, crc16(info)])


def check_message(bits: np.ndarray) -> Payload | None:
    """The payload if the CRC agrees, else None."""
    bits = np.asarray(bits, dtype=np.uint8)
    if bits.size != MESSAGE_BITS or not np.array_equal(crc16(bits[:INFO_BITS]), bits[INFO_BITS:]):
        return None
    return Payload.from_int(bits_to_int(bits[:INFO_BITS]))


@cache
def _trellis() -> tuple[np.ndarray, np.ndarray]:
    """outputs[state, input] -> coded bits; next_state[state, input]."""
    n_states = 1 << TAIL
    outputs = np.zeros((n_states, 2, len(GENERATORS)), dtype=np.uint8)
    next_state = np.zeros((n_states, 2), dtype=np.int64)
    for state in range(n_states):
        for bit in (0, 1):
            register = (bit << TAIL) | state  # newest bit on top
            for g, gen in enumerate(GENERATORS):
                outputs[state, bit, g] = bin(register & gen).count("1") & 1
            next_state[state, bit] = register >> 1
    return outputs, next_state


def conv_encode(bits: np.ndarray) -> np.ndarray:
    """Zero-terminated convolutional encoding: (len + 6) * 3 coded bits."""
    outputs, next_state = _trellis()
    state = 0
    coded = []
    for bit in np.concatenate([np.asarray(bits, dtype=np.uint8), np.zeros(TAIL, np.uint8)]):
        coded.append(outputs[state, bit])
        state = next_state[state, bit]
    return np.concatenate(coded).astype(np.uint8)


def known_key_bits(key_id: int) -> np.ndarray:
    """The message bits a detector knows before decoding when the mark carries `key_id`:
    -1 (unknown) for the content id and the CRC, 0/1 for the 16 key-id bits. A likeness
    key always marks its own id (`keys.watermark_key`), so whoever holds the key knows
    them; forcing them in the trellis pins the decoder's path across the middle of the
    word, where an error event would otherwise run on."""
    known = np.full(MESSAGE_BITS, -1, dtype=np.int8)
    known[CONTENT_BITS:INFO_BITS] = int_to_bits(key_id, KEY_BITS)
    return known


def viterbi_decode(soft: np.ndarray, known: np.ndarray | None = None) -> np.ndarray:
    """Maximum-likelihood decoding of soft values (positive means bit 1, any scale).

    Maximises the correlation sum(soft * (2c - 1)), which is ML for Gaussian noise and,
    with hard +-1 inputs, minimum Hamming distance. `known`: MESSAGE_BITS values, -1
    where the bit is unknown, else the bit the path must take there (`known_key_bits`);
    the result is then the best word that has them. Returns the message bits (no tail).
    """
    outputs, next_state = _trellis()
    n_out = len(GENERATORS)
    soft = np.asarray(soft, dtype=np.float64).reshape(-1, n_out)
    steps = soft.shape[0]
    n_states = 1 << TAIL
    signs = outputs.astype(np.float64) * 2 - 1  # (state, input, n_out)
    metric = np.full(n_states, -np.inf)
    metric[0] = 0.0
    prev_state = np.zeros((steps, n_states), dtype=np.int64)
    prev_bit = np.zeros((steps, n_states), dtype=np.uint8)
    flat_next = next_state.reshape(-1)
    for t in range(steps):
        branch = metric[:, None] + signs @ soft[t]  # (state, input)
        if t >= steps - TAIL:
            branch[:, 1] = -np.inf  # the tail is known to be zeros
        elif known is not None and known[t] >= 0:
            branch[:, 1 - int(known[t])] = -np.inf
        cand = branch.reshape(-1)
        # Each next state has exactly two predecessors; pick the better one.
        order = np.argsort(flat_next, kind="stable")
        pairs = cand[order].reshape(n_states, 2)
        choice = np.argmax(pairs, axis=1)
        winner = order.reshape(n_states, 2)[np.arange(n_states), choice]
        metric = pairs[np.arange(n_states), choice]
        prev_state[t] = winner // 2
        prev_bit[t] = winner % 2
    state = 0
    bits = np.zeros(steps, dtype=np.uint8)
    for t in range(steps - 1, -1, -1):
        bits[t] = prev_bit[t, state]
        state = prev_state[t, state]
    return bits[: steps - TAIL]


def encode_payload(payload: Payload) -> np.ndarray:
    """Payload -> CODED_BITS coded bits (0/1)."""
    return conv_encode(message_bits(payload))
