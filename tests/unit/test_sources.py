"""Where a bus's URL, namespace and secret come from: flags, settings, environment.

Each option is taken from the most specific source that gives it, one
option at a time; a secret is never dropped, and two different secrets are
refused.
"""

from __future__ import annotations

import pytest

from busignal.bus import Bus
from busignal.bus.sources import Source, resolve
from busignal.errors import ConfigurationError

FLAGS = "command line"
SETTINGS = "Django settings"


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
    given = settings("redis://s/0", "shop", ("new", "old"), timeout=3.0)

    resolved = resolve(flags(url="redis://flag/1"), given, {})

    assert resolved is not None
    config = resolved.config
    assert (config.url, config.namespace) == ("redis://flag/1", "shop")
    assert (config.secrets, config.timeout) == (("new", "old"), 3.0)
    assert resolved.origins["secrets"] == SETTINGS


def test_resolve_environment_url_keeps_settings_secret() -> None:
    environ = {"BUSIGNAL_URL": "redis://env/0"}

    resolved = resolve(None, settings(secrets=("s3cret",)), environ)

    assert resolved is not None
    assert (resolved.config.url, resolved.config.secrets) == (
        "redis://env/0",
        ("s3cret",),
    )


def test_resolve_settings_url_keeps_environment_secret_and_namespace() -> None:
    environ = {"BUSIGNAL_SECRET": "a, b", "BUSIGNAL_NAMESPACE": "envns"}

    resolved = resolve(flags(), settings("redis://s/0"), environ)

    assert resolved is not None
    assert (resolved.config.secrets, resolved.config.namespace) == (("a", "b"), "envns")
    assert resolved.origins == {
        "url": SETTINGS,
        "namespace": "environment",
        "secrets": "environment",
    }


def test_resolve_flag_url_keeps_environment_secret() -> None:
    environ = {"BUSIGNAL_URL": "redis://env/0", "BUSIGNAL_SECRET": "s3cret"}

    resolved = resolve(flags(url="redis://flag/0"), None, environ)

    assert resolved is not None
    assert (resolved.config.url, resolved.config.secrets) == (
        "redis://flag/0",
        ("s3cret",),
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
    assert resolve(flags(namespace="n"), settings(secrets=("s",)), {}) is None


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
    environ = {"BUSIGNAL_SECRET": "env-secret"}

    with pytest.raises(ConfigurationError) as raised:
        resolve(None, settings("redis://s/0", secrets=("settings-secret",)), environ)

    message = str(raised.value)
    assert "Django settings" in message
    assert "environment" in message
    assert "in one place" in message
    assert "env-secret" not in message
    assert "settings-secret" not in message


def test_resolve_secrets_in_another_order_are_refused() -> None:
    environ = {"BUSIGNAL_SECRET": "old,new"}

    with pytest.raises(ConfigurationError, match="differs"):
        resolve(None, settings("redis://s/0", secrets=("new", "old")), environ)


def test_resolve_same_secret_in_two_sources_is_accepted() -> None:
    environ = {"BUSIGNAL_SECRET": "new,old"}

    resolved = resolve(None, settings("redis://s/0", secrets=("new", "old")), environ)

    assert resolved is not None
    assert resolved.config.secrets == ("new", "old")
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
    resolved = resolve(flags(namespace="n"), settings("memory://x", secrets=("k",)), {})

    assert resolved is not None
    bus = resolved.bus()
    assert bus.config == resolved.config
    assert bus.signer is not None
    bus.close()


def test_resolved_describe_names_sources_and_hides_the_password() -> None:
    environ = {"BUSIGNAL_SECRET": "k"}
    resolved = resolve(flags(url="redis://u:hunter2@h:6379/0"), None, environ)
    unsigned = resolve(None, settings("redis://h/0"), {})

    assert resolved is not None
    assert unsigned is not None
    assert resolved.describe() == (
        "redis://u:***@h:6379/0 (from command line), namespace 'busignal' "
        "(default), secret from environment: only signed entries run"
    )
    assert unsigned.describe().endswith(
        "no secret: entries are neither signed nor checked"
    )


def test_bus_from_env_reads_url_namespace_and_secret() -> None:
    environ = {
        "BUSIGNAL_URL": "memory://e",
        "BUSIGNAL_NAMESPACE": "envns",
        "BUSIGNAL_SECRET": "a,b",
    }

    bus = Bus.from_env(environ)

    assert bus is not None
    assert (bus.config.namespace, bus.config.secrets) == ("envns", ("a", "b"))
    assert Bus.from_env({}) is None
    bus.close()
