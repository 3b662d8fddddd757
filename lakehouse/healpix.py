"""HEALPix coverage of sky regions, expressed as ``source_id`` ranges.

A Gaia ``source_id`` carries the nested HEALPix index of its source at order
12 in bits 35 and up, so a set of order-12 pixel ranges *is* a set of
``source_id`` ranges. Region coverages come from cdshealpix (a maintained
Rust HEALPix library), never from hand-written geometry.
"""

from __future__ import annotations

import math

import astropy.units as u
import cdshealpix.nested as hp
import numpy as np
from astropy.coordinates import Latitude, Longitude

INDEX_ORDER = 12
SOURCE_ID_SHIFT = 35
MAX_RANGES = 64


def pixel_size_deg(order: int) -> float:
    """Nominal HEALPix pixel size (square root of the pixel area) in degrees."""
    return math.degrees(math.sqrt(4 * math.pi / (12 * 4**order)))


def order_for_size(size_deg: float, max_order: int = INDEX_ORDER) -> int:
    """The deepest order whose pixels are still at least ``size_deg`` across."""
    order = 0
    while order < max_order and pixel_size_deg(order + 1) >= size_deg:
        order += 1
    return order


def source_id_shift(order: int) -> int:
    """Right shift turning a source_id into its HEALPix index at ``order``."""
    if not 0 <= order <= INDEX_ORDER:
        raise ValueError(f"HEALPix order must be 0..{INDEX_ORDER}, got {order}")
    return SOURCE_ID_SHIFT + 2 * (INDEX_ORDER - order)


def healpix_index(ra_deg: np.ndarray, dec_deg: np.ndarray, order: int) -> np.ndarray:
    """Nested HEALPix index of positions at ``order`` (int64)."""
    ipix = hp.lonlat_to_healpix(
        Longitude(np.asarray(ra_deg, dtype=float) * u.deg),
        Latitude(np.asarray(dec_deg, dtype=float) * u.deg),
        order,
    )
    return ipix.astype(np.int64)


def _moc_to_ranges(ipix: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Mixed-order cells → sorted, merged ``[lo, hi)`` ranges at order 12."""
    if len(ipix) == 0:
        return np.empty((0, 2), dtype=np.int64)
    shift = 2 * (INDEX_ORDER - depth.astype(np.int64))
    lo = ipix.astype(np.int64) << shift
    hi = (ipix.astype(np.int64) + 1) << shift
    return merge_ranges(np.stack([lo, hi], axis=1))


def merge_ranges(ranges: np.ndarray) -> np.ndarray:
    """Sort ``[lo, hi)`` ranges and merge the ones that touch or overlap."""
    if len(ranges) == 0:
        return ranges.reshape(0, 2).astype(np.int64)
    ranges = ranges[np.argsort(ranges[:, 0], kind="stable")]
    merged = [list(ranges[0])]
    for lo, hi in ranges[1:]:
        if lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return np.asarray(merged, dtype=np.int64)


def coarsen_ranges(ranges: np.ndarray, max_ranges: int = MAX_RANGES) -> np.ndarray:
    """Close the smallest gaps until at most ``max_ranges`` remain.

    The result still covers every input range (a superset), so it stays a valid
    pre-filter; fewer ranges keep the pushed-down predicate short.
    """
    while len(ranges) > max_ranges:
        gaps = ranges[1:, 0] - ranges[:-1, 1]
        cut = np.sort(gaps)[len(ranges) - max_ranges - 1]
        keep_gap = gaps > cut
        starts = np.concatenate([[True], keep_gap])
        ends = np.concatenate([keep_gap, [True]])
        ranges = np.stack([ranges[starts, 0], ranges[ends, 1]], axis=1)
    return ranges


def dilate(ranges: np.ndarray, margin_deg: float) -> np.ndarray:
    """Grow a coverage so it contains every point within ``margin_deg`` of it.

    Cells are flattened to an order whose pixels are at least twice the margin
    across, then joined by their neighbours; used to absorb sources whose
    source_id pixel differs from their position's pixel.
    """
    if margin_deg <= 0 or len(ranges) == 0:
        return ranges
    order = order_for_size(2 * margin_deg)
    shift = 2 * (INDEX_ORDER - order)
    cells = np.unique(
        np.concatenate([np.arange(lo >> shift, ((hi - 1) >> shift) + 1) for lo, hi in ranges])
    )
    neighbours = hp.neighbours(cells.astype(np.uint64), order).astype(np.int64).ravel()
    cells = np.unique(np.concatenate([cells, neighbours[neighbours >= 0]]))
    return _moc_to_ranges(cells, np.full(len(cells), order))


def _search_order(size_deg: float) -> int:
    """Order for a region coverage: cells about a quarter of the region's size."""
    return max(3, order_for_size(size_deg / 4))


def cone_ranges(ra_deg: float, dec_deg: float, radius_deg: float) -> np.ndarray:
    """Order-12 pixel ranges covering a cone (a superset of it)."""
    if radius_deg >= 90:
        return np.array([[0, 12 * 4**INDEX_ORDER]], dtype=np.int64)
    ipix, depth, _ = hp.cone_search(
        Longitude(ra_deg * u.deg),
        Latitude(dec_deg * u.deg),
        radius_deg * u.deg,
        _search_order(2 * radius_deg),
    )
    return _moc_to_ranges(ipix, depth)


def zone_ranges(ra_min: float, ra_max: float, dec_min: float, dec_max: float) -> np.ndarray:
    """Ranges covering the RA/Dec box; ``ra_min > ra_max`` wraps through RA 0."""
    if ra_min > ra_max:
        return merge_ranges(
            np.concatenate(
                [
                    zone_ranges(ra_min, 360.0, dec_min, dec_max),
                    zone_ranges(0.0, ra_max, dec_min, dec_max),
                ]
            )
        )
    extent = max(ra_max - ra_min, dec_max - dec_min)
    order = _search_order(extent)
    ipix, depth, _ = hp.zone_search(
        Longitude(ra_min * u.deg),
        Latitude(dec_min * u.deg),
        Longitude(ra_max * u.deg, wrap_angle=361 * u.deg),
        Latitude(dec_max * u.deg),
        order,
    )
    # zone_search leaves out points on the upper edges, and (cdshealpix 0.9)
    # can miss a cell along lon_min = 0; one ring of neighbouring cells makes
    # the coverage a safe superset again.
    return dilate(_moc_to_ranges(ipix, depth), pixel_size_deg(order) / 2)


def polygon_ranges(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """Ranges covering a spherical polygon with great-circle edges."""
    extent = float(np.ptp(dec_deg)) + float(np.ptp(ra_deg)) * math.cos(
        math.radians(np.mean(dec_deg))
    )
    ipix, depth, _ = hp.polygon_search(
        Longitude(np.asarray(ra_deg) * u.deg),
        Latitude(np.asarray(dec_deg) * u.deg),
        _search_order(max(extent, 1e-3)),
    )
    return _moc_to_ranges(ipix, depth)


def pixel_ranges(order: int, pixels: np.ndarray) -> np.ndarray:
    """Ranges of explicit HEALPix cells at ``order``."""
    pixels = np.asarray(pixels, dtype=np.int64)
    if np.any(pixels < 0) or np.any(pixels >= 12 * 4**order):
        raise ValueError(f"pixel indices at order {order} must lie in 0..{12 * 4**order - 1}")
    return _moc_to_ranges(pixels, np.full(len(pixels), order))


def to_source_id_ranges(ranges: np.ndarray) -> np.ndarray:
    """Order-12 pixel ranges → ``[lo, hi)`` source_id ranges."""
    return ranges << SOURCE_ID_SHIFT


def partitions_of(ranges: np.ndarray, partition_order: int) -> np.ndarray:
    """Partition pixels (at ``partition_order``) touched by order-12 ranges."""
    shift = 2 * (INDEX_ORDER - partition_order)
    parts = [np.arange(lo >> shift, ((hi - 1) >> shift) + 1) for lo, hi in ranges]
    return np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)


def ranges_meet(ranges: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Which closed ``[lo, hi]`` intervals (files, row groups) meet one of ``ranges``.

    ``ranges`` are sorted, disjoint ``[start, stop)`` rows (as from
    :func:`to_source_id_ranges`): the first range ending after an interval's
    ``lo`` is the only candidate for starting at or before its ``hi``.
    """
    if not len(ranges):
        return np.zeros(len(lo), dtype=bool)
    j = np.searchsorted(ranges[:, 1], lo, side="right")
    return (j < len(ranges)) & (ranges[np.minimum(j, len(ranges) - 1), 0] <= hi)
