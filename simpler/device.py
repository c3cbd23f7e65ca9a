"""The onboard platform's device process, by hand.

A ``ChipWorker(platform="onboard")`` starts ``simpler-device`` on first use,
so none of this is needed to run anything; it is for starting a device with
settings, looking at it, and stopping it. Also ``python -m simpler device
start|status|stop``.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from ._native import check, ffi, lib
from .errors import InvalidArgument
from .device_tensor import _checked_int

log = logging.getLogger("simpler")


@dataclass(frozen=True)
class DeviceStatus:
    """A device process as its status request reports it."""

    device_id: int
    running: bool
    pid: int = 0
    clients: int = 0            # host processes connected, besides the one asking
    core_threads: int = 0
    gm_capacity: int = 0
    committed_bytes: int = 0    # GM in use by all clients
    uptime_s: float = 0.0
    launches: int = 0

    def __str__(self) -> str:
        if not self.running:
            return f"simpler-device {self.device_id}: not running"
        return (f"simpler-device {self.device_id}: running, pid {self.pid}, up {self.uptime_s:.0f} s, "
                f"{self.clients} host process(es) connected, {self.launches} launches, "
                f"{self.committed_bytes / 2**20:.1f} of {self.gm_capacity / 2**30:.1f} GiB GM in use, "
                f"{self.core_threads} core threads")


def _device_id(device_id) -> int:
    return _checked_int("device_id", device_id, 31)


def start(device_id: int = 0, *, gm_capacity: int | None = None, idle_timeout: float | None = None) -> bool:
    """Start device_id's process. False if one runs already (its settings
    stay as they are: stop it first to change them)."""
    device_id = _device_id(device_id)
    cap = 0 if gm_capacity is None else _checked_int("gm_capacity", gm_capacity, 64, minimum=1)
    if idle_timeout is not None and not (isinstance(idle_timeout, (int, float)) and idle_timeout > 0):
        raise InvalidArgument(f"idle_timeout must be a positive number of seconds, not {idle_timeout!r}")
    log.info("starting simpler-device %d", device_id)
    started = time.monotonic()
    rc = lib.simpler_onboard_start(device_id, cap, float(idle_timeout or 0))
    if rc == lib.SIMPLER_E_EXISTS:
        log.info("simpler-device %d runs already", device_id)
        return False
    check(rc, f"starting simpler-device {device_id}")
    log.info("simpler-device %d started in %.2f s", device_id, time.monotonic() - started)
    return True


def status(device_id: int = 0) -> DeviceStatus:
    device_id = _device_id(device_id)
    info = ffi.new("simpler_onboard_info *")
    check(lib.simpler_onboard_status(device_id, info), f"simpler-device {device_id}")
    if not info.running:
        return DeviceStatus(device_id, False)
    return DeviceStatus(device_id, True, info.pid, info.clients, info.core_threads, info.gm_capacity,
                        info.committed_bytes, info.uptime_ms / 1000.0, info.launches)


def stop(device_id: int = 0, *, force: bool = False) -> bool:
    """Stop device_id's process. False if none was running; InvalidState if
    other host processes use it and force is not set."""
    rc = lib.simpler_onboard_stop(_device_id(device_id), 1 if force else 0)
    if rc == lib.SIMPLER_E_NOT_FOUND:
        return False
    check(rc, f"stopping simpler-device {device_id}")
    return True
