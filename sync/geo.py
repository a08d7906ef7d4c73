"""Great-circle distance and GPS fixes."""

from __future__ import annotations

import math
from dataclasses import dataclass

# IUGG mean Earth radius; the spherical model errs by under 0.5 %, far inside GPS noise.
EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True)
class GeoFix:
    """A device's position with its reported accuracy (radius in metres)."""

    lat: float
    lon: float
    accuracy_m: float = 0.0

    def __post_init__(self) -> None:
        check_coordinates(self.lat, self.lon)
        if not math.isfinite(self.accuracy_m) or self.accuracy_m < 0:
            raise ValueError(f"accuracy_m must be a finite number >= 0, got {self.accuracy_m!r}")


def check_coordinates(lat: float, lon: float) -> None:
    """Raise ValueError unless (lat, lon) is a finite point on the globe."""
    if not (math.isfinite(lat) and -90.0 <= lat <= 90.0):
        raise ValueError(f"latitude must be within [-90, 90], got {lat!r}")
    if not (math.isfinite(lon) and -180.0 <= lon <= 180.0):
        raise ValueError(f"longitude must be within [-180, 180], got {lon!r}")


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two points given in degrees."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    d_phi = phi2 - phi1
    d_lambda = math.radians(lon2 - lon1)
    a = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    # min() guards against rounding pushing `a` a hair above 1 for antipodal points.
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, a)))
