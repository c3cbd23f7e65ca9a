"""numpy dtypes and their simpler_dtype codes.

The codes come from the header's ``SIMPLER_DTYPE_*`` constants (through the
extension), never from a table here: each constant's name after the prefix
is the numpy dtype's name, and a dtype numpy lacks (bfloat16) is known by
that name alone.
"""
from __future__ import annotations

import numpy as np

from ._simpler_c import ffi as _ffi
from .errors import InvalidArgument


def _header_dtypes() -> "tuple[dict[np.dtype, int], dict[str, int]]":
    by_numpy: dict[np.dtype, int] = {}
    by_name: dict[str, int] = {}        # the dtypes numpy lacks
    for cname, code in _ffi.typeof("simpler_dtype").relements.items():
        name = cname.removeprefix("SIMPLER_DTYPE_").lower()
        if code == 0:                   # SIMPLER_DTYPE_INVALID
            continue
        try:
            by_numpy[np.dtype(name)] = code
        except TypeError:
            by_name[name] = code
    return by_numpy, by_name


_CODES, _NAMED = _header_dtypes()
_NUMPY = {code: dt for dt, code in _CODES.items()}
_NAMED_CODES = {code: name for name, code in _NAMED.items()}


def dtype_code(dtype) -> int:
    """simpler_dtype for a numpy dtype (or anything np.dtype accepts), or
    the name of one numpy lacks ("bfloat16")."""
    if isinstance(dtype, np.dtype):     # an array's: every array argument of every run asks
        code = _CODES.get(dtype)
        if code is not None:
            return code
    if isinstance(dtype, int):
        if dtype in _NUMPY or dtype in _NAMED_CODES:
            return dtype
        raise InvalidArgument(f"unknown simpler dtype code {dtype:#x}")
    if isinstance(dtype, str) and dtype in _NAMED:
        return _NAMED[dtype]
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise InvalidArgument(f"{dtype!r} is not a dtype") from None
    try:
        return _CODES[dt]
    except KeyError:
        supported = ", ".join(sorted([str(d) for d in _CODES] + list(_NAMED)))
        raise InvalidArgument(f"dtype {dt} is not supported (supported: {supported})") from None


def numpy_dtype(code: int) -> "np.dtype | str":
    """The numpy dtype of a code (its name, e.g. "bfloat16", for one numpy lacks)."""
    return _NAMED_CODES[code] if code in _NAMED_CODES else _NUMPY[code]
