"""TLS: ``rediss://`` with the ``ssl_*`` query options, on a real redis-server.

A throwaway CA, server and client certificate are made with ``openssl`` at
test time; the server listens on a TLS port (and a plain one, for the
test's own bookkeeping) and asks clients for their certificate.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from busignal.bus.bus import Bus
from busignal.errors import BusUnavailable

from .faults_support import SERVICE, wait_handled
from .servers import APPS, RedisServer, WorkerProcess, free_port

sys.path.insert(0, str(APPS))

from faults_receivers import tick


def _tls_supported() -> bool:
    """Whether redis-server was built with TLS (it links OpenSSL), and openssl runs.

    Debian's redis-server 7 is; a build without TLS refuses ``--tls-port``.
    """
    binary = shutil.which("redis-server")
    if binary is None or shutil.which("openssl") is None:
        return False
    if sys.platform != "linux" or shutil.which("ldd") is None:
        return True  # let the fixture's start say what is wrong
    linked = subprocess.run(["ldd", binary], capture_output=True, text=True)
    return "libssl" in linked.stdout


pytestmark = pytest.mark.skipif(
    not _tls_supported(), reason="redis-server built without TLS, or no openssl"
)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _certificates(directory: Path) -> dict[str, Path]:
    """A CA, and a server and a client certificate signed by it."""
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=busignal test CA",
        cwd=directory,
    )  # fmt: skip
    (directory / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name in ("server", "client"):
        _openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
            "-out", f"{name}.csr", "-subj", f"/CN={name}",
            cwd=directory,
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt",
            "-CAkey", "ca.key", "-CAcreateserial", "-days", "1",
            "-out", f"{name}.crt", "-extfile", "san.ext",
            cwd=directory,
        )  # fmt: skip
    return {
        name: directory / name
        for name in ("ca.crt", "server.crt", "server.key", "client.crt", "client.key")
    }


@pytest.fixture
def certs(tmp_path: Path) -> dict[str, Path]:
    directory = tmp_path / "certs"
    directory.mkdir()
    return _certificates(directory)


@pytest.fixture
def tls_port() -> int:
    return free_port()


@pytest.fixture
def redis_server(
    redis_factory: Callable[..., RedisServer], certs: dict[str, Path], tls_port: int
) -> RedisServer:
    """This module's server also listens with TLS on ``tls_port``.

    Its ``url`` (the plain port's) is for the test's own bookkeeping.
    """
    return redis_factory(
        "--tls-port", str(tls_port),
        "--tls-cert-file", str(certs["server.crt"]),
        "--tls-key-file", str(certs["server.key"]),
        "--tls-ca-cert-file", str(certs["ca.crt"]),
    )  # fmt: skip


def _tls_url(port: int, certs: dict[str, Path], ca: str = "ca.crt") -> str:
    return (
        f"rediss://localhost:{port}/0?ssl_ca_certs={certs[ca]}"
        f"&ssl_certfile={certs['client.crt']}&ssl_keyfile={certs['client.key']}"
        f"&ssl_cert_reqs=required"
    )


def test_tls_send_and_work_over_rediss(
    redis_server: RedisServer,
    tls_port: int,
    certs: dict[str, Path],
    worker_factory: Callable[..., WorkerProcess],
) -> None:
    url = _tls_url(tls_port, certs)
    worker_factory(
        SERVICE, "faults_receivers", url=url, env={"TEST_REDIS_URL": redis_server.url}
    )
    bus = Bus(url, timeout=10)
    try:
        [(_, answer)] = tick.using(bus=bus).send_robust(None)
        published = tick.using(bus=bus).publish(None)
    finally:
        bus.close()

    assert answer is None
    wait_handled(redis_server, [published], 20)


def test_tls_plain_connection_to_the_tls_port_is_a_clear_error(
    redis_server: RedisServer, tls_port: int
) -> None:
    port = tls_port
    bus = Bus(f"redis://127.0.0.1:{port}/0", connect_timeout=2, socket_timeout=2)
    try:
        with pytest.raises(BusUnavailable) as raised:
            tick.using(bus=bus).publish(None)
    finally:
        bus.close()

    message = str(raised.value)
    assert f"redis://127.0.0.1:{port}/0" in message
    assert "rediss://" in message


def test_tls_untrusted_server_certificate_is_a_clear_error(
    redis_server: RedisServer, tls_port: int, certs: dict[str, Path], tmp_path: Path
) -> None:
    port = tls_port
    other = tmp_path / "other-ca"
    other.mkdir()
    certs = {**certs, "other-ca.crt": _certificates(other)["ca.crt"]}
    bus = Bus(_tls_url(port, certs, ca="other-ca.crt"), connect_timeout=2)
    try:
        with pytest.raises(BusUnavailable, match="certificate verify failed"):
            tick.using(bus=bus).publish(None)
    finally:
        bus.close()


def test_tls_connection_to_a_plain_port_is_a_clear_error(
    redis_server: RedisServer, certs: dict[str, Path]
) -> None:
    bus = Bus(_tls_url(redis_server.port, certs), connect_timeout=2)
    try:
        with pytest.raises(
            BusUnavailable, match="serves Redis without TLS, use redis://"
        ):
            tick.using(bus=bus).publish(None)
    finally:
        bus.close()
