"""Opening the server's TCP ports, with one-line errors that name the flag to change.

TensorFlow-free, so `tfrl serve` can check its ports before importing TensorFlow
(a port in use fails in a fraction of a second, not after TF's start-up).
"""

from __future__ import annotations

import errno
import socket

from tfrl.errors import TfrlError

__all__ = ["EVERY_INTERFACE", "FLAGS", "ServerStartError", "check_ports", "listen"]

# The flag that sets each port: the launcher's Reverb port, `tfrl replay-server`'s own.
FLAGS = {
    "REST": "--rest_api_port",
    "gRPC": "--port",
    "Reverb": "--replay-port",
    "replay server": "--port",
}
EVERY_INTERFACE = "0.0.0.0"  # where Reverb 0.14 listens: it takes no host


class ServerStartError(TfrlError, OSError):
    """A port could not be opened (in use, or a host that is not this machine's)."""


def listen(api: str, host: str, port: int) -> socket.socket:
    """A listening, non-blocking TCP socket on host:port (SO_REUSEADDR), or ServerStartError.

    Args:
        api: "REST" or "gRPC" (names the API and its flag in errors).
        host: address to bind.
        port: port; 0 picks a free one.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as e:
        raise start_error(api, host, port, e) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1024)
    except OSError as e:
        sock.close()
        raise start_error(api, host, port, e) from None
    sock.setblocking(False)
    return sock


def start_error(api: str, host: str, port: int, e: BaseException) -> ServerStartError:
    """The one-line error for `api`'s port that could not be opened."""
    if isinstance(e, OSError) and e.errno == errno.EADDRINUSE:
        why = f"port {port} is in use (another server?); pick another with {FLAGS[api]}"
    elif isinstance(e, OSError) and e.strerror:
        why = f"{e.strerror}; check --host (an address of this machine, e.g. 127.0.0.1)"
    else:
        why = (
            f"cannot bind (port in use, or --host {host!r} is not an address of this "
            f"machine); pick another {FLAGS[api]} or check --host"
        )
    return ServerStartError(f"Cannot open the {api} API on {host}:{port}: {why}.")


def check_ports(host: str, rest_port: int, grpc_port: int | None) -> None:
    """Fails at once, in one line, if the ports clash or one cannot be opened."""
    if grpc_port is not None and grpc_port == rest_port != 0:
        raise ServerStartError(
            f"--port and --rest_api_port are both {rest_port}; REST and gRPC need different "
            "ports (--port is the gRPC port, as in TF Serving)."
        )
    listen("REST", host, rest_port).close()
    if grpc_port is not None:
        listen("gRPC", host, grpc_port).close()
