"""Whether a request asked for raw bytes (via Accept) rather than the JSON envelope."""

from __future__ import annotations

from service.api.json_responses import JSON_MEDIA_TYPE


def accepted_media_types(accept: str | None) -> set[str]:
    if not accept:
        return set()
    return {part.split(";", 1)[0].strip().lower() for part in accept.split(",") if part.strip()}


def wants_raw(accept: str | None, media_type: str) -> bool:
    """True when Accept names `media_type` explicitly and does not name JSON (wildcards choose JSON)."""
    types = accepted_media_types(accept)
    return media_type in types and JSON_MEDIA_TYPE not in types


def format_from_accept(accept: str | None, candidates: dict[str, str]) -> str | None:
    """The one format (a key of `candidates`, format -> media type) that Accept names explicitly, if exactly one."""
    types = accepted_media_types(accept)
    if JSON_MEDIA_TYPE in types:
        return None
    named = [fmt for fmt, media in candidates.items() if media in types]
    return named[0] if len(named) == 1 else None
