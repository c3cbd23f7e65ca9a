"""numpy dtypes and their simpler_dtype codes (the low byte is the size)."""
from __future__ import annotations

import numpy as np

from .errors import InvalidArgument

_CODES = {
    np.dtype(np.int8): 0x101,
    np.dtype(np.uint8): 0x201,
    np.dtype(np.int16): 0x302,
    np.dtype(np.float16): 0x402,
    np.dtype(np.int32): 0x604,
    np.dtype(np.uint32): 0x704,
    np.dtype(np.float32): 0x804,
    np.dtype(np.int64): 0x908,
    np.dtype(np.uint64): 0xA08,
    np.dtype(np.float64): 0xB08,
}
_NAMES = {code: dt for dt, code in _CODES.items()}
BFLOAT16 = 0x502


def dtype_code(dtype) -> int:
    """simpler_dtype for a numpy dtype (or anything np.dtype accepts), or
    "bfloat16", which numpy lacks."""
    if isinstance(dtype, int):
        if dtype in _NAMES or dtype == BFLOAT16:
            return dtype
        raise InvalidArgument(f"unknown simpler dtype code {dtype:#x}")
    if isinstance(dtype, str) and dtype == "bfloat16":
        return BFLOAT16
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise InvalidArgument(f"{dtype!r} is not a dtype") from None
    try:
        return _CODES[dt]
    except KeyError:
        supported = ", ".join(sorted(str(d) for d in _CODES))
        raise InvalidArgument(f"dtype {dt} is not supported (supported: {supported})") from None


def numpy_dtype(code: int) -> "np.dtype | str":
    """The numpy dtype of a code ("bfloat16" for the one numpy lacks)."""
    return "bfloat16" if code == BFLOAT16 else _NAMES[code]
