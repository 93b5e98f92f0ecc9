"""False-positive probabilities. Pure math.

The sync statistic is a normalised correlation z that is approximately N(0, 1) on an
unmarked input (a sum of many whitened Fourier coefficients with unrelated phases). The
detector takes the best of `hypotheses` (period candidates x cyclic offsets), so the
probability that an unmarked input scores at least z somewhere is
1 - (1 - Q(z))^hypotheses (exact for independent tries, an upper bound otherwise:
neighbouring offsets are correlated, so the effective number of tries is smaller).
"""

from __future__ import annotations

import math

from likeness.provenance.watermark.payload import CRC_BITS, KEY_BITS

# With the reader's key id known, the share of the false-positive budget that goes to a
# blind word passing the CRC *and* carrying that key id (32 check bits); a word that
# passes the CRC alone keeps the rest. Why 1/16: it costs every CRC-only decision 6 %
# of its p_false, while a 32-bit word keeps 2^-32 * 17 of its sync's (see with_key_id).
ID_ROUTE_SHARE = 1.0 / 16


def gaussian_tail(z: float) -> float:
    """Q(z) = P(N(0,1) >= z), accurate far into the tail (erfc, not 1 - cdf)."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def max_of_tries(p_one: float, tries: int) -> float:
    """P(at least one of `tries` independent tests reaches probability `p_one`)."""
    if p_one >= 1.0:
        return 1.0
    return -math.expm1(tries * math.log1p(-p_one))


def sync_p_value(z: float, hypotheses: int) -> float:
    return max_of_tries(gaussian_tail(z), max(1, hypotheses))


def with_check_bits(p_sync: float, crc_ok: bool, words: int = 1) -> float:
    """Combine the sync p-value with the CRC.

    On an unmarked input the decoded word comes from Fourier coefficients disjoint from
    the sync ones (independent for Gaussian-like noise), and each word decoded from it
    (`words`: one, or two when a decode with the key id's bits known is followed by a
    blind one) passes the CRC with probability 2^-16 independently of the sync.
    """
    return min(1.0, p_sync * words * 2.0**-CRC_BITS) if crc_ok else p_sync


def z_for_p(p: float, hypotheses: int) -> float:
    """The z that `sync_p_value` maps to p (bisection; for reports and tests)."""
    lo, hi = 0.0, 40.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if sync_p_value(mid, hypotheses) > p:
            lo = mid
        else:
            hi = mid
    return hi


def with_key_id(p_sync: float, crc_ok: bool, id_checked: bool) -> float:
    """p_false of a read told the key id: two words tried (the key id's bits known, then
    blind), and a blind word that passes the CRC with the key id in its place counts
    KEY_BITS more check bits.

    Two routes accept: A, a word passes the CRC (on an unmarked input, probability at
    most 2 * 2^-16 whatever p_sync is), and B, the blind word passes it and carries the
    key id (2^-32; B lies inside A). A weighted Bonferroni split: the statistic is
    p_sync * 2 * 2^-16 on A and p_sync * 2^-32 / share on B, and P(statistic <= t) <= t
    + share * t on an unmarked input, so p_false = (1 + share) * the statistic (the
    smaller, when both routes accept). Measured gain: see detect._decide."""
    if not crc_ok:
        return p_sync
    stat = with_check_bits(p_sync, True, words=2)
    if id_checked:
        stat = min(stat, p_sync * 2.0 ** -(CRC_BITS + KEY_BITS) / ID_ROUTE_SHARE)
    return min(1.0, (1.0 + ID_ROUTE_SHARE) * stat)
