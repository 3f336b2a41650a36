"""The TCP addresses a process listens on, read from /proc (Linux): for checks that what the
tests and the dev stack start is reachable from this machine only."""

from __future__ import annotations

import ipaddress
import os


def _address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    raw = bytes.fromhex(hex_address)
    # /proc/net/tcp* print each 32-bit word of the address in host (little-endian) order.
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return ipaddress.ip_address(words)


def listening_addresses(pid: int) -> set[tuple[str, int]]:
    """``(address, port)`` of every TCP socket of ``pid`` in the LISTEN state."""
    sockets = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            sockets.add(target[len("socket:[") : -1])
    found = set()
    for table in ("tcp", "tcp6"):
        with open(f"/proc/{pid}/net/{table}") as lines:
            next(lines)  # the header
            for line in lines:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and inode in sockets:  # 0A: TCP_LISTEN
                    address, port = local.split(":")
                    found.add((str(_address(address)), int(port, 16)))
    return found
