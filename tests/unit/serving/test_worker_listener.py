"""The listening address of ``fmnist serve --workers N``: one socket per worker process."""

from __future__ import annotations

import errno
import io
import pickle
import socket
from multiprocessing.reduction import ForkingPickler
from pathlib import Path

import pytest

from fmnist.serving.cli import (
    WorkerListener,
    listening_socket,
    requests_migrate_between_workers,
)


def sent_to_a_worker(sock: socket.socket) -> socket.socket:
    """``sock`` as a worker process receives it (uvicorn's supervisor pickles its sockets)."""
    buffer = io.BytesIO()
    ForkingPickler(buffer).dump([sock])
    (received,) = pickle.loads(buffer.getvalue())
    assert isinstance(received, socket.socket)
    return received


def test_each_worker_gets_its_own_socket_on_the_same_address() -> None:
    with WorkerListener.bind_free("127.0.0.1", 0) as parent:
        address = parent.getsockname()
        assert address[1] != 0
        first, second = sent_to_a_worker(parent), sent_to_a_worker(parent)
        with first, second:
            assert first.getsockname() == second.getsockname() == address
            assert len({parent.fileno(), first.fileno(), second.fileno()}) == 3
            for sock in (first, second):
                assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            with pytest.raises(ConnectionRefusedError):  # the supervisor's never listens
                socket.create_connection(address, timeout=5).close()
            first.listen(8)
            second.listen(8)  # both in one SO_REUSEPORT group
            with socket.create_connection(address, timeout=5):
                pass


@pytest.mark.parametrize("other", ["a plain listener", "another server's workers"])
def test_a_port_something_listens_on_is_refused(other: str) -> None:
    if other == "a plain listener":
        holder = listening_socket("127.0.0.1", 0)
    else:
        with WorkerListener.bind_free("127.0.0.1", 0) as reserved:
            holder = sent_to_a_worker(reserved)
    with holder:
        holder.listen(8)
        port = holder.getsockname()[1]
        with pytest.raises(OSError) as refused:
            WorkerListener.bind_free("127.0.0.1", port)
        assert refused.value.errno == errno.EADDRINUSE


def test_the_migrate_req_sysctl_is_read_where_it_exists(tmp_path: Path) -> None:
    sysctl = tmp_path / "tcp_migrate_req"
    sysctl.write_text("0\n")
    assert not requests_migrate_between_workers(sysctl)
    sysctl.write_text("1\n")
    assert requests_migrate_between_workers(sysctl)
    assert requests_migrate_between_workers(tmp_path / "absent")  # older kernel: no advice
