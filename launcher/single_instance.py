"""One launcher per user (and per config dir): a second launch hands its flags to the first and exits.

QLocalServer/QLocalSocket; the name includes the user and a hash of the
config dir, so tests with their own XDG_CONFIG_HOME never meet a real launcher.
"""

from __future__ import annotations

import getpass
import hashlib
import json

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from serving.core import paths


def server_name() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name (containers): the uid will do
        import os

        user = str(os.getuid())
    digest = hashlib.sha1(str(paths.config_dir()).encode()).hexdigest()[:10]
    return f"gradio-serve-launcher-{user}-{digest}"


def send_to_running(argv: list[str], name: str | None = None, timeout_ms: int = 1000) -> bool:
    """Hand argv to a running launcher; False when there is none."""
    sock = QLocalSocket()
    sock.connectToServer(name or server_name())
    if not sock.waitForConnected(timeout_ms):
        return False
    sock.write(json.dumps({"argv": argv}).encode() + b"\n")
    sock.waitForBytesWritten(timeout_ms)
    sock.waitForReadyRead(timeout_ms)  # the first instance acknowledges, so the message is not lost
    sock.disconnectFromServer()
    return True


class SingleInstance(QObject):
    """Listens for later launches; emits their argv."""

    message_received = Signal(list)

    def __init__(self, name: str | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.name = name or server_name()
        self.server = QLocalServer(self)
        self.server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self.server.newConnection.connect(self._on_connection)
        self._clients: list[QLocalSocket] = []

    def listen(self) -> bool:
        if self.server.listen(self.name):
            return True
        # A socket file left by a launcher that crashed: nobody answers on it, so take it over.
        QLocalServer.removeServer(self.name)
        return self.server.listen(self.name)

    def close(self) -> None:
        self.server.close()

    def _on_connection(self) -> None:
        while self.server.hasPendingConnections():
            sock = self.server.nextPendingConnection()
            self._clients.append(sock)
            sock.readyRead.connect(self._read_clients)
            sock.disconnected.connect(self._drop_closed)

    def _read_clients(self) -> None:
        # One slot for all clients (no per-socket lambdas: they outlive the sockets Qt deletes).
        for sock in list(self._clients):
            while sock.canReadLine():
                try:
                    data = json.loads(bytes(sock.readLine()).decode())
                    argv = [str(a) for a in data.get("argv", [])]
                except (ValueError, AttributeError):
                    argv = []
                sock.write(b"ok\n")
                sock.flush()
                self.message_received.emit(argv)

    def _drop_closed(self) -> None:
        for sock in list(self._clients):
            if sock.state() == QLocalSocket.LocalSocketState.UnconnectedState:
                self._clients.remove(sock)
                sock.deleteLater()
