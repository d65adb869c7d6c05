"""Connections: the server keeps idle keep-alive connections open, the client re-sends dropped reads only."""

from __future__ import annotations

import http.client
import socket
import threading
import time

import pytest

from MedSegLib.client import MedSegClient
from MedSegLib.errors import ServerUnavailable

_OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{"name":"flaky"}'


def test_an_idle_connection_outlives_a_client_poll_interval(live_server) -> None:
    """uvicorn's default closes idle connections after 5 s, racing clients that poll every few seconds."""
    conn = http.client.HTTPConnection("127.0.0.1", live_server.port, timeout=10)
    conn.request("GET", "/info/")
    assert conn.getresponse().read()
    sock = conn.sock
    time.sleep(6)
    conn.request("GET", "/info/")  # on the same socket: fails with RemoteDisconnected if it was closed
    response = conn.getresponse()
    assert response.status == 200 and response.read()
    assert conn.sock is sock
    conn.close()


class _DropsFirstConnection:
    """A TCP server on loopback that closes its first connection after reading the request, then answers."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                self.connections += 1
                conn.recv(65536)
                if self.connections > 1:
                    conn.sendall(_OK)

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def flaky():
    server = _DropsFirstConnection()
    yield server
    server.close()


def test_a_dropped_read_is_sent_again(flaky) -> None:
    client = MedSegClient(f"http://127.0.0.1:{flaky.port}", timeout=5)
    assert client.info() == {"name": "flaky"}
    assert flaky.connections == 2


def test_a_dropped_write_is_never_sent_twice(flaky) -> None:
    client = MedSegClient(f"http://127.0.0.1:{flaky.port}", timeout=5)
    with pytest.raises(ServerUnavailable):
        client.train_start("auto_seg")
    assert flaky.connections == 1
