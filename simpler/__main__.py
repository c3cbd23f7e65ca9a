"""``python -m simpler device start|status|stop [DEVICE_ID]``."""
from __future__ import annotations

import argparse
import sys

from . import device
from .errors import SimplerError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simpler")
    sub = parser.add_subparsers(dest="command", required=True)
    dev = sub.add_parser("device", help="the onboard platform's device process (started on first use anyway)")
    actions = dev.add_subparsers(dest="action", required=True)
    p_start = actions.add_parser("start", help="start a device process")
    p_start.add_argument("--gm-capacity", type=int, help="bytes of GM (default 16 GiB, reserved lazily)")
    p_start.add_argument("--idle-timeout", type=float,
                         help="seconds with no host process before it exits (default 120)")
    actions.add_parser("status", help="show a device process")
    p_stop = actions.add_parser("stop", help="stop a device process")
    p_stop.add_argument("--force", action="store_true", help="stop it even while host processes use it")
    for p in (p_start, p_stop, actions.choices["status"]):
        p.add_argument("device_id", nargs="?", type=int, default=0, help="device id (default 0)")
    args = parser.parse_args(argv)
    try:
        if args.action == "start":
            if not device.start(args.device_id, gm_capacity=args.gm_capacity, idle_timeout=args.idle_timeout):
                print(f"simpler-device {args.device_id} was already running (stop it first to change its "
                      "settings)")
            print(device.status(args.device_id))
        elif args.action == "status":
            print(device.status(args.device_id))
        else:
            stopped = device.stop(args.device_id, force=args.force)
            print(f"simpler-device {args.device_id}: {'stopped' if stopped else 'was not running'}")
    except SimplerError as e:
        print(f"python -m simpler: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
