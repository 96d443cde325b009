"""Sentinel URLs: what they name, how they are checked, what messages show."""

from __future__ import annotations

import pytest
import redis.sentinel

from busignal import ConfigurationError
from busignal.bus.bus import Bus
from busignal.transport.clients import Transport, redact
from busignal.transport.sentinel import SentinelTarget, _not_found


def test_sentinel_url_names_sentinels_master_and_db() -> None:
    url = "redis+sentinel://u:pw@10.0.0.1:26379,10.0.0.2:26380/mymaster/3"

    target = SentinelTarget.parse(url, redact(url))

    assert target.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26380))
    assert target.master == "mymaster"
    assert target.options["db"] == 3
    assert (target.options["username"], target.options["password"]) == ("u", "pw")
    assert "password" not in target.sentinel_options


def test_sentinel_url_takes_the_password_and_sentinel_login_from_the_query() -> None:
    url = (
        "redis+sentinel://h:26379/mymaster?password=pw"
        "&sentinel_password=spw&socket_keepalive=true"
    )

    target = SentinelTarget.parse(url, redact(url))

    assert target.options["password"] == "pw"
    assert target.options["db"] == 0
    assert target.sentinel_options == {"password": "spw"}


def test_rediss_sentinel_url_uses_tls_for_master_and_sentinels() -> None:
    url = "rediss+sentinel://h:26379/mymaster/0?ssl_cert_reqs=none"

    target = SentinelTarget.parse(url, redact(url))

    assert target.options["ssl"] is True
    assert target.sentinel_options["ssl"] is True
    assert target.sentinel_options["ssl_cert_reqs"] == "none"  # as redis:// has it


def test_sentinel_client_connects_through_the_managed_pool() -> None:
    transport = Transport("rediss+sentinel://h:26379/mymaster/2")

    pool = transport.sync_client().connection_pool

    assert isinstance(pool, redis.sentinel.SentinelConnectionPool)
    assert pool.service_name == "mymaster"
    assert pool.connection_class is redis.sentinel.SentinelManagedSSLConnection
    assert pool.connection_kwargs["db"] == 2


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://h:26379",
        "redis+sentinel://h:26379/",
        "redis+sentinel://h:26379/mymaster/zero",
        "redis+sentinel://h/mymaster/0",
    ],
)
def test_sentinel_url_without_master_or_port_is_a_configuration_error(
    url: str,
) -> None:
    with pytest.raises(ConfigurationError, match=r"redis\+sentinel://"):
        Bus(url)


def test_sentinel_url_cannot_be_a_cluster() -> None:
    with pytest.raises(ConfigurationError, match="cannot be a Redis Cluster"):
        Transport("redis+sentinel://h:26379/mymaster", cluster=True)


def test_redact_hides_query_passwords() -> None:
    url = "redis+sentinel://:pw@h:1/m/0?password=pw2&sentinel_password=pw3&db=0"

    shown = redact(url)

    assert "pw" not in shown.replace("password", "")
    assert shown.endswith("?password=***&sentinel_password=***&db=0")


@pytest.mark.parametrize(
    ("failed", "reason"),
    [
        (0, "no Sentinel knows a healthy master named 'm'"),
        (1, "1 of 2 Sentinels answered and none knows a healthy master named 'm'"),
        (2, "no Sentinel answered"),
    ],
)
def test_master_not_found_says_which_sentinels_answered(
    failed: int, reason: str
) -> None:
    target = SentinelTarget.parse("redis+sentinel://a:1,b:2/m", "shown")
    errors = ", ".join(f"<Redis {i}> - ConnectionError('x')" for i in range(failed))
    raw = redis.sentinel.MasterNotFoundError(f"No master found for 'm' : {errors}")

    message = str(_not_found(target, raw))

    assert message.startswith("master 'm' through the Sentinels a:1, b:2: ")
    assert reason in message
