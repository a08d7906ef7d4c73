"""The console's map projection: north up, east right, shape kept, inside the margins."""

from __future__ import annotations

import pytest

from server.console.map_tiles import check_tile_url, tiled
from server.console.route_map import HEIGHT, MARGIN, WIDTH, drawing, project


def test_north_is_up_and_east_is_right():
    home, north, east = project([(31.20, 121.40), (31.25, 121.40), (31.20, 121.45)])
    assert north.y < home.y and north.x == pytest.approx(home.x)
    assert east.x > home.x and east.y == pytest.approx(home.y)


def test_a_degree_of_longitude_is_shorter_than_one_of_latitude_away_from_the_equator():
    home, north, east = project([(60.0, 10.0), (60.1, 10.0), (60.0, 10.1)])
    assert (east.x - home.x) == pytest.approx((home.y - north.y) / 2, rel=0.01)  # cos 60° = 0.5


def test_every_point_is_inside_the_margins_and_one_point_is_centred():
    placed = project([(31.2 + i / 100, 121.4 + i / 70) for i in range(10)])
    assert all(MARGIN <= p.x <= WIDTH - MARGIN and MARGIN <= p.y <= HEIGHT - MARGIN for p in placed)
    (alone,) = project([(31.2, 121.4)])
    assert (alone.x, alone.y) == (WIDTH / 2, HEIGHT / 2)


def test_the_path_runs_from_the_start_through_the_stops_in_route_order():
    page = {
        "home": {"lat": 31.20, "lon": 121.40},
        "route": {"stops": [{"visit_id": 2}, {"visit_id": 1}]},
        "visits": [
            {"id": 1, "borrower": {"home_geo": {"lat": 31.22, "lon": 121.42}}},
            {"id": 2, "borrower": {"home_geo": {"lat": 31.21, "lon": 121.41}}},
            {"id": 3, "borrower": {"home_geo": {"lat": 31.23, "lon": 121.43}}},
            {"id": 4, "borrower": None},  # no card: nothing to draw
        ],
    }
    drawn = drawing(page)
    assert [(s["visit_id"], s["n"]) for s in drawn["stops"]] == [(2, 1), (1, 2)]
    assert [o["visit_id"] for o in drawn["others"]] == [3]
    assert drawn["path"].split()[0] == f"{drawn['start'].x},{drawn['start'].y}"
    assert len(drawn["path"].split()) == 3


def test_a_tile_url_must_be_http_with_z_x_and_y():
    assert check_tile_url("") is None
    assert check_tile_url("https://tiles.bank.internal/osm/{z}/{x}/{y}.png") == (
        "https://tiles.bank.internal"
    )
    for bad in ("ftp://t/{z}/{x}/{y}", "https://t/{z}/{x}.png", "javascript:{z}{x}{y}"):
        with pytest.raises(ValueError, match="DOORSTEP_CONSOLE_MAP_TILE_URL"):
            check_tile_url(bad)


def test_tiles_cover_the_drawing_and_the_points_fall_inside_it():
    points = [(31.20, 121.40), (31.23, 121.47), (31.25, 121.44)]
    placed, tiles = tiled(points, "https://t/{z}/{x}/{y}.png")
    assert all(MARGIN <= p.x <= WIDTH - MARGIN and MARGIN <= p.y <= HEIGHT - MARGIN for p in placed)
    assert placed[0].y > placed[2].y  # north up: the southern point is lower
    assert tiles and all(t["href"].startswith("https://t/") for t in tiles)
    # every pixel of the drawing lies under some tile
    for x, y in ((0, 0), (WIDTH - 1, 0), (0, HEIGHT - 1), (WIDTH - 1, HEIGHT - 1)):
        assert any(t["x"] <= x < t["x"] + 256 and t["y"] <= y < t["y"] + 256 for t in tiles)
    zoom = {t["href"].split("/")[3] for t in tiles}
    assert len(zoom) == 1 and 10 <= int(zoom.pop()) <= 18  # a city's zoom, one level
