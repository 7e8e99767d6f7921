"""``guardrail serve``: a guarded reverse proxy in front of any OpenAI-compatible server."""

from guardrail.proxy.config import ProxyConfig
from guardrail.proxy.dispatch import PathDispatch
from guardrail.proxy.forward import HOP_BY_HOP_HEADERS, ReverseProxy, filter_headers
from guardrail.proxy.health import HealthApp, ReadyApp

__all__ = [
    "HOP_BY_HOP_HEADERS",
    "HealthApp",
    "PathDispatch",
    "ProxyConfig",
    "ReadyApp",
    "ReverseProxy",
    "filter_headers",
]
