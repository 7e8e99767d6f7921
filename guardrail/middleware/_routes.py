"""Matching request paths against the configured route templates (compiled once)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from guardrail.middleware._stream_text import builtin_name
from guardrail.middleware.adapters import ADAPTERS, ApiAdapter

__all__ = ["GuardedRoute", "RouteTable"]


@dataclass(frozen=True, slots=True)
class GuardedRoute:
    """A guarded route: its template (the metric label, never the raw path) and adapter.

    ``builtin`` is the adapter's name when it is a built-in one (a worker process can then
    read the route's streams), else None.
    """

    template: str
    adapter: ApiAdapter
    builtin: str | None = None


def _segments(path: str) -> tuple[str, ...]:
    return tuple(path.strip("/").split("/"))


class RouteTable:
    """Exact templates resolve with one dict lookup; templates with ``{name}`` by segments."""

    def __init__(self, routes: Mapping[str, str | ApiAdapter]) -> None:
        exact: dict[str, GuardedRoute] = {}
        patterns: list[tuple[tuple[str | None, ...], GuardedRoute]] = []
        for template, adapter in routes.items():
            resolved = ADAPTERS[adapter] if isinstance(adapter, str) else adapter
            route = GuardedRoute(template, resolved, builtin_name(resolved))
            if "{" in template:
                parts = tuple(None if s.startswith("{") else s for s in _segments(template))
                patterns.append((parts, route))
            else:
                exact["/" + "/".join(_segments(template))] = route
        self._exact = exact
        self._patterns = tuple(patterns)

    def match(self, path: str) -> GuardedRoute | None:
        """The route guarding ``path`` (a trailing slash is ignored), or None."""
        route = self._exact.get(path)
        if route is not None or not (self._patterns or path.endswith("/")):
            return route
        segments = _segments(path)
        route = self._exact.get("/" + "/".join(segments))
        if route is not None:
            return route
        for parts, candidate in self._patterns:
            if len(parts) == len(segments) and all(
                s if p is None else p == s for p, s in zip(parts, segments, strict=True)
            ):
                return candidate
        return None
