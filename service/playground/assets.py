"""The playground's files, read once from the package's `static/` folder into memory.

Only the files that are in the package when the server starts can be served: a request names one of them, never
a path, so nothing outside the package (or added later) is reachable.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib.resources import files

PAGE = "index.html"

# Media types by suffix; a file with any other suffix is not served.
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str  # a strong validator: the first 16 hex digits of the body's sha256, quoted


@dataclass(frozen=True)
class PlaygroundAssets:
    page: Asset  # index.html, served at /
    files: dict[str, Asset]  # everything else, by file name, served at /playground/{name}


def load_assets() -> PlaygroundAssets:
    """Read every servable file of `service/playground/static/`. Raises `FileNotFoundError` without the page."""
    static = files("service.playground").joinpath("static")
    found: dict[str, Asset] = {}
    for entry in static.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1] if "." in entry.name else ""
        if not entry.is_file() or suffix not in MEDIA_TYPES:
            continue
        body = entry.read_bytes()
        found[entry.name] = Asset(body, MEDIA_TYPES[suffix], f'"{hashlib.sha256(body).hexdigest()[:16]}"')
    page = found.pop(PAGE, None)
    if page is None:
        raise FileNotFoundError(f"the playground's {PAGE} is missing from the installed package")
    return PlaygroundAssets(page=page, files=found)
