"""The HTTP serving side: FastAPI app, batching engine, codecs and metrics. Depends on `models` only."""

from service.app import create_app
from service.settings import ServiceSettings

__all__ = ["ServiceSettings", "create_app"]
