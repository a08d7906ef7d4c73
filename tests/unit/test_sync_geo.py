"""Great-circle distance and GPS fixes."""

import pytest

from sync.geo import GeoFix, haversine_m


@pytest.mark.parametrize(
    ("a", "b", "expected_m", "tolerance_m"),
    [
        ((31.2304, 121.4737), (31.2304, 121.4737), 0.0, 1e-9),
        # One degree of latitude is about 111.2 km on the mean sphere.
        ((0.0, 0.0), (1.0, 0.0), 111_195.0, 5.0),
        # Two points in central Shanghai; the flat-earth approximation gives the same 1,882 m.
        ((31.2304, 121.4737), (31.2400, 121.4900), 1_882.0, 5.0),
        # Antipodes: half the circumference.
        ((0.0, 0.0), (0.0, 180.0), 20_015_115.0, 50.0),
    ],
)
def test_haversine_distances(a, b, expected_m, tolerance_m):
    assert haversine_m(*a, *b) == pytest.approx(expected_m, abs=tolerance_m)
    assert haversine_m(*b, *a) == pytest.approx(haversine_m(*a, *b))


@pytest.mark.parametrize(
    ("lat", "lon", "accuracy"),
    [(91.0, 0.0, 0.0), (0.0, 181.0, 0.0), (float("nan"), 0.0, 0.0), (0.0, 0.0, -1.0)],
)
def test_geofix_refuses_impossible_values(lat, lon, accuracy):
    with pytest.raises(ValueError):
        GeoFix(lat, lon, accuracy)
