"""Run the int8 weights as uint8 on x86 CPUs whose int8 kernels saturate.

The model's matrix products are ``MatMulInteger`` with uint8 activations and signed int8
weights (zero point 0). On an x86 CPU with VNNI (``avx512_vnni``, ``avx_vnni``) onnxruntime
computes them with ``VPDPBUSD``, exactly. Without VNNI (plain AVX2 or AVX-512) it uses
``VPMADDUBSW``, which adds two uint8 x int8 products into a *saturating* int16: large
activations meeting large weights are clipped. On an AMD EPYC (Zen 1, AVX2) that moved a
golden score by 0.027 and the dev verdicts of the shipped model (see the model card).

Stored as uint8 (each weight + 128, zero point 128: the very same values) the weights take
onnxruntime's uint8 x uint8 kernel, which widens to int16 before multiplying and so cannot
saturate. On that EPYC it is as fast as the saturating kernel and reproduces the VNNI
outputs bit for bit. On VNNI CPUs signed weights stay: VNNI multiplies uint8 by int8 only.

The conversion edits the serialized model in memory, so the shipped file (and its checksum)
stays one file, and needs no ``onnx`` package at run time: a small reader of the protobuf
wire format walks model -> graph -> node -> attribute -> (sub)graph, and rewrites only the
int8 tensors every use of which is a ``MatMulInteger`` weight or weight zero point. If an
int8 tensor is used any other way, nothing is converted and the signed weights run.

``GUARDRAIL_INT8_WEIGHTS`` (``auto``, ``signed``, ``unsigned``) overrides the choice.
"""

from __future__ import annotations

import mmap
import os
import platform
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np

__all__ = [
    "ENV_VAR",
    "WeightMode",
    "choose_weight_mode",
    "cpu_flags",
    "cpu_needs_unsigned",
    "read_cpuinfo",
    "unsigned_pieces",
    "unsigned_weights",
]

ENV_VAR = "GUARDRAIL_INT8_WEIGHTS"
WeightMode = Literal["signed", "unsigned"]

_VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})
_X86 = frozenset({"x86_64", "amd64", "i386", "i686", "x86"})

_Buf = bytes | bytearray | memoryview
# Protobuf wire types, and the onnx.proto field numbers the walk follows.
_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5
_MODEL_GRAPH = 7
_GRAPH_NODE, _GRAPH_INITIALIZER = 1, 5
_NODE_INPUT, _NODE_OP_TYPE, _NODE_ATTRIBUTE = 1, 4, 5
_ATTR_T, _ATTR_G, _ATTR_TENSORS, _ATTR_GRAPHS = 5, 6, 10, 11
_TENSOR_DATA_TYPE, _TENSOR_INT32_DATA, _TENSOR_NAME, _TENSOR_RAW = 2, 5, 8, 9
_UINT8, _INT8 = 2, 3
#: MatMulInteger inputs that hold the weights and their zero point.
_WEIGHT_INPUTS = (1, 3)
#: Which fields of each message kind hold the messages the walk descends into.
_CHILDREN: dict[str, dict[int, str]] = {
    "model": {_MODEL_GRAPH: "graph"},
    "graph": {_GRAPH_NODE: "node", _GRAPH_INITIALIZER: "tensor"},
    "node": {_NODE_ATTRIBUTE: "attribute"},
    "attribute": {
        _ATTR_T: "tensor",
        _ATTR_TENSORS: "tensor",
        _ATTR_G: "graph",
        _ATTR_GRAPHS: "graph",
    },
}


def cpu_flags(cpuinfo: str | None) -> frozenset[str] | None:
    """The first ``flags`` line of ``/proc/cpuinfo`` text (None: none, or no text)."""
    for line in (cpuinfo or "").splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return None


def read_cpuinfo() -> str | None:
    """``/proc/cpuinfo`` (None where there is none: not Linux)."""
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def cpu_needs_unsigned(machine: str, cpuinfo: str | None) -> bool:
    """True on an x86 CPU without VNNI (or whose flags cannot be read)."""
    if machine.lower() not in _X86:
        return False  # ARM and others: no VPMADDUBSW
    flags = cpu_flags(cpuinfo)
    return flags is None or not (_VNNI_FLAGS & flags)  # unknown x86: exact results first


def choose_weight_mode(environ: dict[str, str] | None = None) -> WeightMode:
    """The weight mode for this machine, or the one ``GUARDRAIL_INT8_WEIGHTS`` names."""
    wanted = (os.environ if environ is None else environ).get(ENV_VAR, "auto").strip().lower()
    if wanted in ("signed", "unsigned"):
        return "signed" if wanted == "signed" else "unsigned"
    if wanted not in ("", "auto"):
        raise ValueError(f"{ENV_VAR} must be auto, signed or unsigned, got {wanted!r}")
    return "unsigned" if cpu_needs_unsigned(platform.machine(), read_cpuinfo()) else "signed"


# -- the protobuf wire format ------------------------------------------------------


def _varint(buf: _Buf, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("malformed varint")


def _encode_varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int32 values are sent as ten-byte varints
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _fields(buf: _Buf) -> Iterator[tuple[int, int, int, int, int]]:
    """(field number, wire type, field start, value start, value end) of each field."""
    pos = 0
    while pos < len(buf):
        start = pos
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            _, end = _varint(buf, pos)
        elif wire == _LEN:
            length, pos = _varint(buf, pos)
            end = pos + length
        elif wire == _FIXED64:
            end = pos + 8
        elif wire == _FIXED32:
            end = pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if end > len(buf):
            raise ValueError("truncated protobuf field")
        yield number, wire, start, pos, end
        pos = end


def _len_prefix(number: int, length: int) -> bytes:
    """The key and length that precede a length-delimited field of ``length`` bytes."""
    return _encode_varint(number << 3 | _LEN) + _encode_varint(length)


def _graphs(buf: _Buf, kind: str) -> Iterator[tuple[str, _Buf]]:
    """Every node and initializer of the graphs below a model (``kind`` "model")."""
    children = _CHILDREN[kind]
    for number, wire, _, start, end in _fields(buf):
        child = children.get(number)
        if child is not None and wire == _LEN:
            value = buf[start:end]
            if child in ("node", "tensor"):
                yield child, value
            if child != "tensor":
                yield from _graphs(value, child)


def _text(buf: _Buf, wanted: int) -> list[str]:
    return [
        bytes(buf[start:end]).decode("utf-8", errors="replace")
        for number, wire, _, start, end in _fields(buf)
        if number == wanted and wire == _LEN
    ]


def _data_type(tensor: _Buf) -> int | None:
    for number, wire, _, start, _end in _fields(tensor):
        if number == _TENSOR_DATA_TYPE and wire == _VARINT:
            return _varint(tensor, start)[0]
    return None


def _convertible(model: _Buf) -> set[str] | None:
    """Names of the int8 tensors to convert; None when one is used other than as a weight."""
    int8: set[str] = set()
    weight_uses: set[str] = set()
    other_uses: set[str] = set()
    for kind, buf in _graphs(model, "model"):
        if kind == "tensor":
            if _data_type(buf) == _INT8:
                names = _text(buf, _TENSOR_NAME)
                int8.add(names[0] if names else "")
            continue
        inputs = _text(buf, _NODE_INPUT)
        is_matmul = _text(buf, _NODE_OP_TYPE) == ["MatMulInteger"]
        for index, name in enumerate(inputs):
            (weight_uses if is_matmul and index in _WEIGHT_INPUTS else other_uses).add(name)
    if "" in int8 or int8 & other_uses or not int8 <= weight_uses:
        return None  # an unnamed int8 constant, or one read as something else
    return int8


def _rewrite_tensor(buf: _Buf, names: set[str]) -> list[_Buf]:
    named = _text(buf, _TENSOR_NAME)
    if not named or named[0] not in names:
        return [buf]
    out: list[_Buf] = []
    for number, wire, field_start, start, end in _fields(buf):
        if number == _TENSOR_DATA_TYPE and wire == _VARINT:
            out.append(_encode_varint(number << 3 | _VARINT) + _encode_varint(_UINT8))
        elif number == _TENSOR_RAW and wire == _LEN:
            flipped = np.frombuffer(buf[start:end], dtype=np.uint8) ^ np.uint8(0x80)
            out += [_len_prefix(number, flipped.size), flipped.data]  # q + 128 flips the top bit
        elif number == _TENSOR_INT32_DATA:
            values: list[int] = []
            if wire == _LEN:  # packed
                pos = start
                while pos < end:
                    value, pos = _varint(buf, pos)
                    values.append(value)
            else:
                values.append(_varint(buf, start)[0])
            signed = [v - (1 << 64) if v >= 1 << 63 else v for v in values]
            packed = b"".join(_encode_varint(v + 128) for v in signed)
            out.append(_len_prefix(number, len(packed)) + packed)
        else:
            out.append(buf[field_start:end])
    return out


def _rewrite(buf: _Buf, kind: str, names: set[str]) -> list[_Buf]:
    """The message as a list of pieces: views of the input where nothing changed."""
    if kind == "tensor":
        return _rewrite_tensor(buf, names)
    children = _CHILDREN[kind]
    out: list[_Buf] = []
    for number, wire, field_start, start, end in _fields(buf):
        child = children.get(number)
        if child is None or wire != _LEN:
            out.append(buf[field_start:end])
        else:
            payload = _rewrite(buf[start:end], child, names)
            out.append(_len_prefix(number, sum(len(piece) for piece in payload)))
            out += payload
    return out


def unsigned_pieces(model: _Buf | mmap.mmap) -> list[_Buf] | None:
    """``model`` with its int8 ``MatMulInteger`` weights as uint8, as pieces to write out in
    order (mostly views of ``model``, so no second copy of it is built); None if it has no
    such weights or uses an int8 tensor otherwise (the signed weights must then run)."""
    view = memoryview(model)
    names = _convertible(view)
    if not names:
        return None
    return _rewrite(view, "model", names)


def unsigned_weights(model: _Buf) -> bytes | None:
    """:func:`unsigned_pieces` joined into one serialized model."""
    pieces = unsigned_pieces(model)
    return None if pieces is None else b"".join(pieces)
