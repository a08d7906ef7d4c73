"""Drawing an agent's day without a tile server: an equirectangular projection of the
points, scaled by the cosine of their mean latitude (true to shape over a city), fitted
into the drawing with a margin. Presentation only: what the route is, routes.py decides."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

WIDTH, HEIGHT, MARGIN = 800, 560, 40


@dataclass(frozen=True)
class Placed:
    """A point on the drawing, in SVG coordinates (y grows downwards)."""

    x: float
    y: float


def project(points: Sequence[tuple[float, float]]) -> list[Placed]:
    """(lat, lon) pairs -> positions in a WIDTH x HEIGHT drawing, north up."""
    if not points:
        return []
    mean_lat = math.radians(sum(lat for lat, _ in points) / len(points))
    xs = [lon * math.cos(mean_lat) for _, lon in points]
    ys = [lat for lat, _ in points]
    span = max(max(xs) - min(xs), max(ys) - min(ys), 1e-6)
    scale = min(WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN) / span
    left = MARGIN + (WIDTH - 2 * MARGIN - (max(xs) - min(xs)) * scale) / 2
    top = MARGIN + (HEIGHT - 2 * MARGIN - (max(ys) - min(ys)) * scale) / 2
    return [
        Placed(round(left + (x - min(xs)) * scale, 1), round(top + (max(ys) - y) * scale, 1))
        for x, y in zip(xs, ys, strict=True)
    ]


def drawing(page: dict, tile_url: str = "") -> dict:
    """The map of a route-map page body: the start, each stop in route order with its
    number, visits not on the route, and the path joining start and stops; with a tile URL
    template, placed in Web Mercator over the tiles that cover it (map_tiles.py)."""
    located = {
        v["id"]: (v["borrower"]["home_geo"]["lat"], v["borrower"]["home_geo"]["lon"])
        for v in page["visits"]
        if v.get("borrower") and v["borrower"].get("home_geo")
    }
    order = [s["visit_id"] for s in page["route"]["stops"] if s["visit_id"] in located]
    others = [i for i in located if i not in order]
    home = page.get("home")
    points = ([(home["lat"], home["lon"])] if home else []) + [located[i] for i in order + others]
    tiles: list[dict] = []
    if tile_url:
        from server.console.map_tiles import tiled

        placed, tiles = tiled(points, tile_url)
    else:
        placed = project(points)
    start = placed.pop(0) if home else None
    stops = [{"visit_id": i, "n": n + 1, "at": placed[n]} for n, i in enumerate(order)]
    rest = [{"visit_id": i, "at": placed[len(order) + n]} for n, i in enumerate(others)]
    path = ([start] if start else []) + [s["at"] for s in stops]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "start": start,
        "stops": stops,
        "others": rest,
        "path": " ".join(f"{p.x},{p.y}" for p in path),
        "tiles": tiles,
    }
