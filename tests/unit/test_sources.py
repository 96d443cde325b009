"""Where a bus's URL, namespace and secret come from: flags, settings, environment.

Each option is taken from the most specific source that gives it, one
option at a time; a secret is never dropped, and two different secrets are
refused.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from busignal.bus import Bus
from busignal.bus.sources import Source, environment, resolve
from busignal.errors import ConfigurationError

FLAGS = "command line"
LONG = "0123456789abcdefghijklmnopqrstuvwxyz"
SETTINGS = "Django settings"
NEW = "new-secret-0123456789abcdefghijkl"
OLD = "old-secret-0123456789abcdefghijkl"
A = "a-secret-0123456789abcdefghijklmn"
B = "b-secret-0123456789abcdefghijklmn"
K = "k-secret-0123456789abcdefghijklmn"
S = "s3cret-s3cret-s3cret-s3cret-s3cret"


def flags(url: str | None = None, namespace: str | None = None) -> Source:
    return Source(FLAGS, url, namespace)


def settings(
    url: str | None = None,
    namespace: str | None = None,
    secrets: tuple[str, ...] = (),
    **options: object,
) -> Source:
    return Source(SETTINGS, url, namespace, secrets, options)


def test_resolve_settings_url_with_flag_namespace_takes_both() -> None:
    resolved = resolve(flags(namespace="tenant"), settings("redis://s/0"), {})

    assert resolved is not None
    assert (resolved.config.url, resolved.config.namespace) == ("redis://s/0", "tenant")
    assert resolved.origins == {"url": SETTINGS, "namespace": FLAGS, "secrets": "none"}


def test_resolve_flag_url_keeps_settings_secret_namespace_and_options() -> None:
    given = settings(
        "redis://s/0",
        "shop",
        (NEW, OLD),
        timeout=3.0,
    )

    resolved = resolve(flags(url="redis://flag/1"), given, {})

    assert resolved is not None
    config = resolved.config
    assert (config.url, config.namespace) == ("redis://flag/1", "shop")
    assert (config.secrets, config.timeout) == (
        (NEW, OLD),
        3.0,
    )
    assert resolved.origins["secrets"] == SETTINGS


def test_resolve_environment_url_keeps_settings_secret() -> None:
    environ = {"BUSIGNAL_URL": "redis://env/0"}

    resolved = resolve(None, settings(secrets=(S,)), environ)

    assert resolved is not None
    assert (resolved.config.url, resolved.config.secrets) == (
        "redis://env/0",
        (S,),
    )


def test_resolve_settings_url_keeps_environment_secret_and_namespace() -> None:
    environ = {
        "BUSIGNAL_SECRET": f"{A}, {B}",
        "BUSIGNAL_NAMESPACE": "envns",
    }

    resolved = resolve(flags(), settings("redis://s/0"), environ)

    assert resolved is not None
    assert (resolved.config.secrets, resolved.config.namespace) == (
        (A, B),
        "envns",
    )
    assert resolved.origins == {
        "url": SETTINGS,
        "namespace": "environment",
        "secrets": "environment",
    }


def test_resolve_flag_url_keeps_environment_secret() -> None:
    environ = {
        "BUSIGNAL_URL": "redis://env/0",
        "BUSIGNAL_SECRET": S,
    }

    resolved = resolve(flags(url="redis://flag/0"), None, environ)

    assert resolved is not None
    assert (resolved.config.url, resolved.config.secrets) == (
        "redis://flag/0",
        (S,),
    )


def test_resolve_most_specific_source_wins_each_option() -> None:
    environ = {"BUSIGNAL_URL": "redis://env/0", "BUSIGNAL_NAMESPACE": "envns"}

    only_env = resolve(None, None, environ)
    settings_over_env = resolve(None, settings("redis://s/0", "setns"), environ)
    flags_over_all = resolve(
        flags(url="redis://f/0", namespace="fns"),
        settings("redis://s/0", "setns"),
        environ,
    )

    assert only_env is not None
    assert settings_over_env is not None
    assert flags_over_all is not None
    assert (only_env.config.url, only_env.config.namespace) == (
        "redis://env/0",
        "envns",
    )
    assert (settings_over_env.config.url, settings_over_env.config.namespace) == (
        "redis://s/0",
        "setns",
    )
    assert (flags_over_all.config.url, flags_over_all.config.namespace) == (
        "redis://f/0",
        "fns",
    )


def test_resolve_without_any_url_is_none() -> None:
    assert (
        resolve(
            flags(namespace="n"),
            settings(secrets=(S,)),
            {},
        )
        is None
    )


def test_resolve_blank_values_say_nothing() -> None:
    environ = {"BUSIGNAL_URL": "redis://env/0", "BUSIGNAL_NAMESPACE": "  "}

    resolved = resolve(flags(url="", namespace=""), None, environ)

    assert resolved is not None
    assert (resolved.config.url, resolved.config.namespace) == (
        "redis://env/0",
        "busignal",
    )
    assert resolved.origins["namespace"] == "default"


def test_resolve_different_secrets_in_two_sources_are_refused() -> None:
    environ = {"BUSIGNAL_SECRET": "env-secret-0123456789abcdefghijklm"}

    with pytest.raises(ConfigurationError) as raised:
        resolve(
            None,
            settings("redis://s/0", secrets=("settings-secret-0123456789abcdefgh",)),
            environ,
        )

    message = str(raised.value)
    assert "Django settings" in message
    assert "environment" in message
    assert "in one place" in message
    assert "env-secret-0123456789abcdefghijklm" not in message
    assert "settings-secret-0123456789abcdefgh" not in message


def test_resolve_secrets_in_another_order_are_refused() -> None:
    environ = {"BUSIGNAL_SECRET": f"{OLD},{NEW}"}

    with pytest.raises(ConfigurationError, match="differs"):
        resolve(
            None,
            settings(
                "redis://s/0",
                secrets=(NEW, OLD),
            ),
            environ,
        )


def test_resolve_same_secret_in_two_sources_is_accepted() -> None:
    environ = {"BUSIGNAL_SECRET": f"{NEW},{OLD}"}

    resolved = resolve(
        None,
        settings(
            "redis://s/0",
            secrets=(NEW, OLD),
        ),
        environ,
    )

    assert resolved is not None
    assert resolved.config.secrets == (NEW, OLD)
    assert resolved.origins["secrets"] == SETTINGS


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tiemout": 5}, r"unknown bus options \['tiemout'\]"),
        ({"secret": "x"}, r"set \['secret'\]; give the URL, namespace and secret"),
        ({"namespace": "x"}, r"set \['namespace'\]"),
    ],
)
def test_resolve_bad_settings_options_are_refused(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        resolve(None, Source(SETTINGS, "redis://s/0", options=options), {})


def test_resolved_bus_has_the_resolved_config() -> None:
    resolved = resolve(
        flags(namespace="n"),
        settings("memory://x", secrets=(K,)),
        {},
    )

    assert resolved is not None
    bus = resolved.bus()
    assert bus.config == resolved.config
    assert bus.signer is not None
    bus.close()


def test_resolved_describe_names_sources_and_hides_the_password() -> None:
    environ = {"BUSIGNAL_SECRET": K}
    resolved = resolve(flags(url="redis://u:hunter2@h:6379/0"), None, environ)
    unsigned = resolve(None, settings("redis://h/0"), {})

    assert resolved is not None
    assert unsigned is not None
    assert resolved.describe() == (
        "redis://u:***@h:6379/0 (from command line), namespace 'busignal' "
        "(default), secret from environment: only signed entries run"
    )
    # The worker warns of a missing secret itself, once.
    assert unsigned.describe() == (
        "redis://h/0 (from Django settings), namespace 'busignal' (default)"
    )


def test_bus_from_env_reads_url_namespace_and_secret() -> None:
    environ = {
        "BUSIGNAL_URL": "memory://e",
        "BUSIGNAL_NAMESPACE": "envns",
        "BUSIGNAL_SECRET": f"{A},{B}",
    }

    bus = Bus.from_env(environ)

    assert bus is not None
    assert (bus.config.namespace, bus.config.secrets) == (
        "envns",
        (A, B),
    )
    assert Bus.from_env({}) is None
    bus.close()


def test_environment_secret_file_gives_one_secret_per_line(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text(f"new,{LONG}\n\n  old-{LONG}  \n")

    source = environment({"BUSIGNAL_SECRET_FILE": str(path)})

    assert source.secrets == (f"new,{LONG}", f"old-{LONG}")


def test_environment_secret_file_and_secret_together_are_refused(
    tmp_path: Path,
) -> None:
    path = tmp_path / "secret"
    path.write_text(LONG)

    with pytest.raises(ConfigurationError, match="set one"):
        environment({"BUSIGNAL_SECRET_FILE": str(path), "BUSIGNAL_SECRET": LONG})


def test_environment_secret_file_missing_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "absent"

    with pytest.raises(ConfigurationError, match="cannot read BUSIGNAL_SECRET_FILE"):
        environment({"BUSIGNAL_SECRET_FILE": str(path)})


def test_environment_secret_file_empty_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("\n  \n")

    with pytest.raises(ConfigurationError, match="holds no secret"):
        environment({"BUSIGNAL_SECRET_FILE": str(path)})


def test_resolve_secret_shorter_than_32_bytes_is_refused_with_the_reason() -> None:
    environ = {"BUSIGNAL_URL": "memory://x", "BUSIGNAL_SECRET": f"{LONG},short"}

    with pytest.raises(ConfigurationError) as raised:
        resolve(None, None, environ)

    message = str(raised.value)
    assert "secret #2 is 5 bytes long" in message
    assert "at least 32" in message
    assert "short" not in message.replace("short key", "")


def test_resolve_secret_with_a_comma_is_split_as_a_list() -> None:
    # A comma in BUSIGNAL_SECRET separates secrets; each half is then too
    # short, and the message points at BUSIGNAL_SECRET_FILE.
    environ = {
        "BUSIGNAL_URL": "memory://x",
        "BUSIGNAL_SECRET": f"{LONG[:16]},{LONG[:16]}",
    }

    with pytest.raises(ConfigurationError, match="BUSIGNAL_SECRET_FILE"):
        resolve(None, None, environ)


def test_bus_config_repr_hides_url_passwords_and_secrets() -> None:
    bus = Bus(
        "redis://user:pw-in-netloc@h:1/0?password=pw-in-query&socket_timeout=1",
        secret=[f"first-{LONG}", f"second-{LONG}"],
    )

    shown = repr(bus.config) + repr(bus)

    assert "pw-in-netloc" not in shown
    assert "pw-in-query" not in shown
    assert LONG not in shown
    assert "secrets=<2 secret(s)>" in shown
    assert "socket_timeout=1" in shown
