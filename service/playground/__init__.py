"""The playground: one page (HTML, CSS, ES modules) shipped as package data, a client of the public v1 API."""

from service.playground.assets import Asset, PlaygroundAssets, load_assets

__all__ = ["Asset", "PlaygroundAssets", "load_assets"]
