"""The one place an onnxruntime InferenceSession is built, with explicit thread settings.

Defaults matter here: left alone, onnxruntime starts one intra-op thread per core and lets
them spin between runs, which in a web server steals CPU from the event loop and from the
other workers. So the thread count is always explicit, inter-op parallelism is off (the
graph is a straight line), and idle threads sleep instead of spinning.

One graph rewrite is switched off: ``SkipLayerNormFusion``. onnxruntime 1.32's fused
SkipLayerNormalization kernel measured ~7x slower here than the Add + LayerNormalization it
replaces (306 vs 45 us on a [2, 48, 384] tensor, one thread), and without it a window costs
about a fifth less (1.29 -> 1.05 ms at 48 tokens). On onnxruntime 1.17 it makes no measurable
difference. The unfused graph is also the one the ONNX file spells out, so its outputs no
longer move by the fused kernel's rounding (int8 noise of up to 0.013 in a logit).

On x86 CPUs without VNNI the int8 weights are run as uint8 (``_int8_weights``): there
onnxruntime's signed int8 kernel saturates, and the unsigned one gives the VNNI results.
"""

from __future__ import annotations

import contextlib
import mmap
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import onnxruntime as ort

from guardrail.errors import ModelLoadError
from guardrail.model._int8_weights import WeightMode, choose_weight_mode, unsigned_pieces

__all__ = ["DISABLED_OPTIMIZERS", "OUTPUT_NAMES", "SessionInfo", "make_session"]

_Used = Literal["signed", "unsigned", "none"]

#: Output names and the width of each (taxonomy orders: 3 verdicts, 2 kinds, 16 categories).
OUTPUT_NAMES: tuple[tuple[str, int], ...] = (
    ("verdict_logits", 3),
    ("kind_logits", 2),
    ("category_logits", 16),
)
_REQUIRED_INPUTS = ("input_ids", "attention_mask")
_OPTIONAL_INPUTS = ("token_type_ids",)
#: onnxruntime graph rewrites that measured slower than the graph they replace (see above).
DISABLED_OPTIMIZERS: tuple[str, ...] = ("SkipLayerNormFusion",)


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A ready session plus the inputs its graph declares (only those are fed)."""

    session: Any  # ort.InferenceSession; onnxruntime ships no type information
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    threads: int
    #: How the int8 weights run: as stored ("signed"), converted to uint8 ("unsigned"), or
    #: "none" when the graph has no int8 weights to convert.
    int8_weights: _Used = "signed"


def make_session(
    model_path: Path, threads: int, *, weights: WeightMode | None = None
) -> SessionInfo:
    """Load ``model_path`` on the CPU with ``threads`` intra-op threads and check its I/O.

    ``weights`` None picks the int8 weight mode for this CPU (or ``GUARDRAIL_INT8_WEIGHTS``).
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ModelLoadError(f"threads must be a positive integer, got {threads!r}")
    try:
        mode = choose_weight_mode() if weights is None else weights
    except ValueError as exc:
        raise ModelLoadError(str(exc)) from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # warnings about unused initialisers are noise to users
    if threads > 1:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        with _model_source(model_path, mode) as (model, used):
            session = ort.InferenceSession(
                model,
                sess_options=options,
                providers=["CPUExecutionProvider"],
                disabled_optimizers=list(DISABLED_OPTIMIZERS),
            )
    except ModelLoadError:
        raise
    except Exception as exc:  # onnxruntime raises its own untyped exception classes
        raise ModelLoadError(f"cannot load ONNX model {model_path}: {exc}") from exc
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name: o for o in session.get_outputs()}
    _check_names(model_path, "input", _REQUIRED_INPUTS, inputs)
    _check_names(model_path, "output", (name for name, _ in OUTPUT_NAMES), outputs)
    unknown = sorted(set(inputs) - set(_REQUIRED_INPUTS) - set(_OPTIONAL_INPUTS))
    if unknown:
        raise ModelLoadError(
            f"{model_path}: graph declares inputs this runtime cannot feed: {unknown}"
        )
    for name, width in OUTPUT_NAMES:
        shape = outputs[name].shape
        # Dynamic dimensions come back as strings or None; only a fixed wrong width is an error.
        if len(shape) != 2 or (isinstance(shape[1], int) and shape[1] != width):
            raise ModelLoadError(
                f"{model_path}: output {name} has shape {shape}, expected [batch, {width}]"
            )
    fed = tuple(n for n in (*_REQUIRED_INPUTS, *_OPTIONAL_INPUTS) if n in inputs)
    return SessionInfo(
        session=session,
        input_names=fed,
        output_names=tuple(name for name, _ in OUTPUT_NAMES),
        threads=threads,
        int8_weights=used,
    )


@contextlib.contextmanager
def _model_source(model_path: Path, mode: WeightMode) -> Iterator[tuple[str | bytes, _Used]]:
    """What to build the session from: the file itself, or its weights converted to uint8.

    A converted model goes through a temporary file, not bytes: onnxruntime keeps about
    16 MiB more resident for a model it was handed as bytes (a session of this model added
    37 MiB RSS from bytes, 21 MiB from a path, measured on the AVX2 EPYC). Where no temporary
    file can be written the bytes are used.
    """
    if mode == "signed":
        yield str(model_path), "signed"
        return
    with contextlib.ExitStack() as stack:
        try:
            handle = stack.enter_context(model_path.open("rb"))
            # Mapped, not read: a 17 MB bytes object freed again leaves the heap bigger.
            data = stack.enter_context(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ))
            pieces = unsigned_pieces(data)
        except OSError as exc:
            raise ModelLoadError(f"cannot read ONNX model {model_path}: {exc}") from exc
        except (ValueError, IndexError) as exc:
            raise ModelLoadError(f"cannot load ONNX model {model_path}: {exc}") from exc
        if pieces is None:
            yield str(model_path), "none"
            return
        source = _temporary_copy(pieces, model_path.name, stack) or b"".join(pieces)
        del pieces  # views of the mapping: they must go before it is closed
        yield source, "unsigned"


def _temporary_copy(
    pieces: Iterable[bytes | bytearray | memoryview], name: str, stack: contextlib.ExitStack
) -> str | None:
    """Write ``pieces`` to a file in a temporary directory ``stack`` removes; None if the
    file cannot be written."""
    try:
        directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="guardrail-model-"))
        path = Path(directory) / name
        with path.open("wb") as handle:
            handle.writelines(pieces)
    except OSError:
        return None
    return str(path)


def _check_names(path: Path, what: str, wanted: Iterable[str], present: dict[str, Any]) -> None:
    missing = [name for name in wanted if name not in present]
    if missing:
        raise ModelLoadError(
            f"{path}: graph lacks {what}(s) {missing}; it declares {sorted(present)}"
        )
