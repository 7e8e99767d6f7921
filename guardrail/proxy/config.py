"""Proxy settings, validated once at start-up so a bad flag fails before the port opens."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from guardrail.errors import ConfigError

__all__ = ["ProxyConfig"]


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    """Where to forward requests and how patiently.

    ``read_timeout`` bounds the wait for each chunk of the upstream response, not the whole
    response, so long token streams are fine as long as tokens keep coming.
    ``strip_request_headers`` are consumed here and never sent upstream: the signed context
    header is a credential for the guardrail, not for the model server.
    """

    upstream: str
    connect_timeout: float = 5.0
    read_timeout: float = 300.0
    write_timeout: float = 60.0
    pool_timeout: float = 10.0
    max_connections: int = 200
    max_keepalive_connections: int = 50
    strip_request_headers: tuple[str, ...] = ("x-guardrail-context",)

    def __post_init__(self) -> None:
        try:
            url = httpx.URL(self.upstream)
        except (httpx.InvalidURL, TypeError) as exc:
            raise ConfigError(f"--upstream {self.upstream!r} is not a valid URL: {exc}") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise ConfigError(
                f"--upstream {self.upstream!r} must be an http:// or https:// URL with a host, "
                "e.g. http://127.0.0.1:8000"
            )
        if url.query or url.fragment:
            raise ConfigError(f"--upstream {self.upstream!r} must not carry a query or fragment")
        for name in ("connect_timeout", "read_timeout", "write_timeout", "pool_timeout"):
            value = getattr(self, name)
            if not value > 0:
                raise ConfigError(f"{name.replace('_', '-')} must be > 0 seconds, got {value}")
        if isinstance(self.strip_request_headers, str):
            raise ConfigError("strip_request_headers must be a tuple of header names")
        object.__setattr__(
            self, "strip_request_headers", tuple(h.lower() for h in self.strip_request_headers)
        )
        if self.max_connections < 1 or self.max_keepalive_connections < 0:
            raise ConfigError("max-connections must be >= 1 and keep-alive connections >= 0")

    @property
    def upstream_url(self) -> httpx.URL:
        return httpx.URL(self.upstream)

    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(
            connect=self.connect_timeout,
            read=self.read_timeout,
            write=self.write_timeout,
            pool=self.pool_timeout,
        )

    def limits(self) -> httpx.Limits:
        return httpx.Limits(
            max_connections=self.max_connections,
            max_keepalive_connections=self.max_keepalive_connections,
        )
