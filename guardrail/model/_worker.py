"""The inference worker process behind ``ProcessClassifier``.

    python -m guardrail.model._worker FD MODEL_DIR THREADS VERIFY TAIL_THRESHOLD

``FD`` is this process's end of a socket pair made by the parent; ``TAIL_THRESHOLD`` is
the parent's effective tail threshold (the model's own unless overridden). Every message is one
``multiprocessing.connection`` frame holding a ``marshal``-encoded value: the worker first
sends ``("ready", pid)`` (or ``("error", type name, message)`` when the model does not
load), then answers each ``("texts", [text, ...])`` with ``("ok", rows)``, a row per text,
each ``("stream", adapter name, raw SSE bytes)`` with ``("stream", skip reason or None,
texts, rows)``, and either with ``("error", type name, message)`` when it fails. It exits
when the parent closes its end, which also happens when the parent dies, so a worker never
outlives the server that started it.

``marshal`` rather than ``pickle``: the messages are lists of strings and tuples of floats,
which marshal encodes faster, and nothing on either side can name code to run.
"""

from __future__ import annotations

import marshal
import os
import signal
import sys
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from guardrail.classification import Classification

__all__ = ["Row", "main", "to_row"]

#: A Classification as sent over the pipe: its fields in declaration order.
Row = tuple[str, float, str, str, float, str | None]


def to_row(result: Classification) -> Row:
    """A Classification as plain values (numpy scalars would not marshal)."""
    return (
        result.verdict,
        float(result.refusal_score),
        result.kind,
        result.category,
        float(result.category_score),
        result.skipped,
    )


def _error(exc: BaseException) -> tuple[str, str, str]:
    return ("error", type(exc).__name__, str(exc))


def _read_stream(classifier: Any, adapter: str, raw: bytes) -> tuple[Any, ...]:
    # Imported here: a worker that is only asked for texts never loads the middleware.
    from guardrail.middleware._stream_text import stream_texts

    skipped, texts = stream_texts(adapter, raw)
    rows = [to_row(r) for r in classifier.classify_batch(texts)] if texts and not skipped else []
    return ("stream", skipped, list(texts), rows)


def _serve(conn: Connection, classifier: Any) -> int:
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return 0  # the parent closed its end or went away
        reply: Any
        try:
            request = marshal.loads(data)
            if request[0] == "stream":
                reply = _read_stream(classifier, request[1], request[2])
            else:
                reply = ("ok", [to_row(result) for result in classifier.classify_batch(request[1])])
        except Exception as exc:  # reported to the caller, which raises it there
            reply = _error(exc)
        try:
            conn.send_bytes(marshal.dumps(reply))
        except OSError:
            return 0  # the parent stopped waiting (closed, or gave up on this call)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 5:
        print(
            "usage: python -m guardrail.model._worker FD DIR THREADS VERIFY TAIL_THRESHOLD",
            file=sys.stderr,
        )
        return 2
    # Ctrl-C in a terminal reaches the whole process group; the server decides when its
    # workers stop (by closing their pipes), so an interrupt here would only print noise.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn = Connection(int(args[0]))
    try:
        from guardrail.model.classifier import RefusalClassifier

        classifier = RefusalClassifier.load(
            args[1],
            threads=int(args[2]),
            verify_checksums=args[3] == "1",
            tail_threshold=float(args[4]),
        )
    except Exception as exc:
        conn.send_bytes(marshal.dumps(_error(exc)))
        return 1
    conn.send_bytes(marshal.dumps(("ready", os.getpid())))
    return _serve(conn, classifier)


if __name__ == "__main__":
    raise SystemExit(main())
