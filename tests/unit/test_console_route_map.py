"""The console's map projection: north up, east right, shape kept, inside the margins."""

from __future__ import annotations

import pytest

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
