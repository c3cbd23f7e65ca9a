"""The driver protocol's layouts as the C header declares them, for tests
that speak the protocol by hand: platform/onboard/protocol.h is the one
source. It is plain C by design (fixed-width integer fields, one struct
per typedef, #define and enum constants), so a small parser reads it; a
field type it does not know fails here, loudly, rather than a test
packing the wrong bytes. Integers are little-endian on every machine the
device runs on (both ends share the host)."""
from __future__ import annotations

import re
import struct
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEADERS = [ROOT / "csrc" / "common" / "device_abi.h", ROOT / "platform" / "onboard" / "protocol.h"]
_CODES = {"uint64_t": "Q", "int64_t": "q", "uint32_t": "I", "int32_t": "i", "uint16_t": "H", "int16_t": "h",
          "uint8_t": "B"}


def _strip(text: str) -> str:
    return re.sub(r"//.*", "", re.sub(r"/\*.*?\*/", "", text, flags=re.S))


def _number(expr: str, known: dict[str, int]) -> int:
    expr = re.sub(r"(\d+)u\b", r"\1", expr.strip())
    for name, value in known.items():
        expr = re.sub(rf"\b{name}\b", str(value), expr)
    if not re.fullmatch(r"[\s\d()xa-fA-F<>|+*-]+", expr):
        raise ValueError(f"protocol.h: cannot read the value {expr!r}")
    return int(eval(expr, {}))  # digits and operators only, checked above


def _parse() -> tuple[dict[str, int], dict[str, str]]:
    constants: dict[str, int] = {}
    formats: dict[str, str] = {}
    for header in HEADERS:
        text = _strip(header.read_text())
        for name, value in re.findall(r"^#define\s+(ONB_\w+)\s+(.+)$", text, flags=re.M):
            constants[name] = _number(value, constants)
        for body in re.findall(r"enum\s+onb_\w+\s*\{(.*?)\}", text, flags=re.S):
            nxt = 0
            for item in (i.strip() for i in body.split(",")):
                if not item:
                    continue
                name, _, value = item.partition("=")
                nxt = _number(value, constants) if value else nxt
                constants[name.strip()] = nxt
                nxt += 1
        for body, name in re.findall(r"typedef\s+struct\s+\w+\s*\{(.*?)\}\s*(\w+)\s*;", text, flags=re.S):
            fmt = ""
            for field in (f.strip() for f in body.split(";")):
                if not field or field.endswith("[]"):      # a flexible array member adds no fixed bytes
                    continue
                ctype = field.split()[0]
                if ctype in _CODES:
                    fmt += _CODES[ctype]
                elif ctype in formats:
                    fmt += formats[ctype]
                elif name.startswith(("onb_", "simpler_launch_params")):
                    raise ValueError(f"{header.name}: {name} has a field of type {ctype}")
                else:
                    fmt = None
                    break
            if fmt is not None:
                formats[name] = fmt
    return constants, formats


CONSTANTS, _FORMATS = _parse()


def layout(name: str) -> struct.Struct:
    """The struct.Struct of a protocol struct (onb_hello, onb_gm, ...)."""
    return struct.Struct("<" + _FORMATS[name])


def __getattr__(name: str) -> int:
    """ONB_* constants and message types: protocol_layout.ONB_HELLO."""
    try:
        return CONSTANTS[name]
    except KeyError:
        raise AttributeError(name) from None
