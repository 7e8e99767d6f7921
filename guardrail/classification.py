"""The classifier's result type and the Protocol every classifier implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

from guardrail.taxonomy import Category, Kind, Verdict

__all__ = ["Classification", "Classifier", "StreamReader", "StreamReading", "WindowPrefixer"]


@dataclass(frozen=True, slots=True)
class Classification:
    """What the classifier says about one assistant response.

    ``refusal_score`` is P(partial or full refusal). ``kind``/``category`` are "none" for
    compliance; ``category_score`` is the probability of the chosen category (0.0 for none).
    ``skipped`` names why a text got a defined default instead of a model verdict (for
    example ``"empty"``), and is None when the model read the text.
    """

    verdict: Verdict
    refusal_score: float
    kind: Kind
    category: Category
    category_score: float
    skipped: str | None = None

    @property
    def is_refusal(self) -> bool:
        return self.verdict != "compliance"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class Classifier(Protocol):
    """Anything that turns response texts into Classifications; must be thread-safe."""

    def classify(self, text: str) -> Classification: ...

    def classify_batch(self, texts: Sequence[str]) -> list[Classification]: ...


@runtime_checkable
class WindowPrefixer(Protocol):
    """A classifier that can say when a growing text (a stream) fills its first window.

    ``window_prefix(text)`` is None while ``text`` is too short, then the prefix of ``text``
    the classifier reads as the first window of any longer text that begins with it. The
    middleware holds a stream back exactly that long (``stream_window_rule="model"``).
    """

    def window_prefix(self, text: str) -> str | None: ...


@dataclass(frozen=True, slots=True)
class StreamReading:
    """A finished stream read and classified: why it could not be read (``skipped``, None
    when it could), its text per choice, and one Classification per text."""

    skipped: str | None
    texts: tuple[str, ...]
    classifications: tuple[Classification, ...]


@runtime_checkable
class StreamReader(Protocol):
    """A classifier that reads a finished SSE stream itself (elsewhere than the event loop).

    ``classify_stream(adapter, raw)`` parses ``raw`` (the stream's bytes) with the built-in
    adapter named ``adapter`` and classifies its texts; the middleware hands it the streams
    it classifies only after their last byte. Must be thread-safe.
    """

    def classify_stream(self, adapter: str, raw: bytes) -> StreamReading: ...
