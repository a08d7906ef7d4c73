"""An optional tile layer under the route map, for banks that run their own tile server
(`CONSOLE_MAP_TILE_URL`, e.g. `https://tiles.bank.internal/{z}/{x}/{y}.png`). Without it the
map stays the plain SVG drawing (route_map.py). With it, the points are placed in Web
Mercator at the largest zoom that fits them, and the tiles covering the drawing are laid
under the route as SVG images: the browser fetches them from that one origin, which the
page's Content-Security-Policy then allows (img-src), and from nowhere else."""

from __future__ import annotations

import math
from collections.abc import Sequence
from urllib.parse import urlsplit

from server.console.route_map import HEIGHT, MARGIN, WIDTH, Placed

TILE = 256  # pixels of a tile
MAX_ZOOM = 18
MAX_TILES = 40  # tiles one map may ask for, whatever the points


def check_tile_url(url: str) -> str | None:
    """The origin of a tile URL template, or None when none is set; a template that is not
    http(s) with {z}, {x} and {y} is refused at start-up (ValueError naming the setting)."""
    if not url:
        return None
    parts = urlsplit(url)
    holes = all(hole in url for hole in ("{z}", "{x}", "{y}"))
    if parts.scheme not in ("http", "https") or not parts.netloc or not holes:
        raise ValueError(
            "DOORSTEP_CONSOLE_MAP_TILE_URL: expected http(s)://host/…{z}/{x}/{y}…, "
            f"got {url!r}"
        )
    return f"{parts.scheme}://{parts.netloc}"


def _world(lat: float, lon: float, zoom: int) -> tuple[float, float]:
    """Web Mercator pixel coordinates of a point at a zoom level."""
    size = TILE * (1 << zoom)
    lat = max(min(lat, 85.0511), -85.0511)
    siny = math.sin(math.radians(lat))
    x = (lon + 180.0) / 360.0 * size
    y = (0.5 - math.log((1 + siny) / (1 - siny)) / (4 * math.pi)) * size
    return x, y


def tiled(points: Sequence[tuple[float, float]], template: str) -> tuple[list[Placed], list[dict]]:
    """(lat, lon) pairs placed on a WIDTH x HEIGHT drawing in Web Mercator, and the tiles
    under it ({href, x, y} in drawing coordinates, each TILE wide)."""
    if not points:
        return [], []
    zoom = MAX_ZOOM
    while zoom > 0:
        world = [_world(lat, lon, zoom) for lat, lon in points]
        xs, ys = [p[0] for p in world], [p[1] for p in world]
        if max(xs) - min(xs) <= WIDTH - 2 * MARGIN and max(ys) - min(ys) <= HEIGHT - 2 * MARGIN:
            break
        zoom -= 1
    world = [_world(lat, lon, zoom) for lat, lon in points]
    xs, ys = [p[0] for p in world], [p[1] for p in world]
    left = (min(xs) + max(xs)) / 2 - WIDTH / 2  # the drawing's corner in world pixels
    top = (min(ys) + max(ys)) / 2 - HEIGHT / 2
    placed = [Placed(round(x - left, 1), round(y - top, 1)) for x, y in world]
    count = 1 << zoom
    tiles = []
    for ty in range(max(int(top // TILE), 0), min(int((top + HEIGHT) // TILE), count - 1) + 1):
        for tx in range(int(left // TILE), int((left + WIDTH) // TILE) + 1):
            href = (
                template.replace("{z}", str(zoom))
                .replace("{x}", str(tx % count))
                .replace("{y}", str(ty))
            )
            tiles.append({"href": href, "x": tx * TILE - left, "y": ty * TILE - top})
    return placed, tiles[:MAX_TILES]
