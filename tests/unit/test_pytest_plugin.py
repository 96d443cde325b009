"""The pytest plugin, as a user's test suite sees it (run through ``pytester``)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

RECEIVERS = """
    from busignal import Signal, receiver

    order_paid = Signal("order_paid")
    page_viewed = Signal("page_viewed")
    seen = []


    class Order:
        pass


    @receiver(order_paid)
    def charge(sender, order_id, amount, **kwargs):
        return {"charged": amount, "order": order_id}


    @receiver(page_viewed)
    def count(sender, path, **kwargs):
        seen.append(path)
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    """A user's project: a module of signals and receivers beside the tests."""
    pytester.makepyfile(shop=textwrap.dedent(RECEIVERS))
    pytester.syspathinsert()
    return pytester


def _run(suite: pytest.Pytester, test: str) -> pytest.RunResult:
    suite.makepyfile(test_user=textwrap.dedent(test))
    # A process of its own, as a user runs pytest: the plugin loads from its
    # entry point before busignal is imported.
    return suite.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error")


def test_pytest_plugin_worker_fixture_returns_receivers_results(
    suite: pytest.Pytester,
) -> None:
    result = _run(
        suite,
        """
        from shop import Order, charge, order_paid

        def test_charge(busignal_worker):
            results = order_paid.send(sender=Order, order_id=7, amount=4200)
            assert results == [(charge, {"charged": 4200, "order": 7})]
        """,
    )

    result.assert_outcomes(passed=1)


def test_pytest_plugin_published_asserts_signal_sender_and_kwargs(
    suite: pytest.Pytester,
) -> None:
    result = _run(
        suite,
        """
        import pytest
        from shop import Order, order_paid

        def test_published(busignal_published):
            order_paid.publish(sender=Order, order_id=7, amount=4200)

            event = busignal_published.assert_published(
                order_paid, sender=Order, order_id=7
            )
            assert event.kwargs == {"order_id": 7, "amount": 4200}
            busignal_published.assert_not_published(order_paid, order_id=8)

        def test_published_failure_lists_what_was_sent(busignal_published):
            order_paid.publish(sender=Order, order_id=7, amount=4200)

            with pytest.raises(AssertionError) as failure:
                busignal_published.assert_published(order_paid, order_id=8)

            assert "found 0" in str(failure.value)
            assert "order_id=7" in str(failure.value)
        """,
    )

    result.assert_outcomes(passed=2)


def test_pytest_plugin_drain_runs_published_events_in_burst(
    suite: pytest.Pytester,
) -> None:
    result = _run(
        suite,
        """
        import shop

        def test_drain(busignal_drain):
            shop.seen.clear()
            for path in ("/a", "/b"):
                shop.page_viewed.publish(sender=None, path=path)

            assert busignal_drain() == 2
            assert shop.seen == ["/a", "/b"]
            assert busignal_drain() == 0
        """,
    )

    result.assert_outcomes(passed=1)


def test_pytest_plugin_bus_is_fresh_in_every_test(suite: pytest.Pytester) -> None:
    result = _run(
        suite,
        """
        import busignal
        import pytest
        from shop import order_paid

        @pytest.mark.parametrize("run", [1, 2])
        def test_fresh(busignal_bus, busignal_published, run):
            assert busignal.get_bus() is busignal_bus
            assert busignal_published.events() == []
            order_paid.publish(sender=None, order_id=run, amount=1)

        def test_removed_after():
            assert busignal.get_bus() is None
        """,
    )

    result.assert_outcomes(passed=3)


def test_pytest_plugin_marker_sets_service_and_namespace(
    suite: pytest.Pytester,
) -> None:
    result = _run(
        suite,
        """
        import pytest
        from shop import Order, order_paid

        @pytest.mark.busignal(service="billing", namespace="shop")
        def test_marker(busignal_bus, busignal_worker):
            order_paid.send(sender=Order, order_id=1, amount=1)

            assert busignal_bus.config.namespace == "shop"
            assert busignal_worker.config.service == "billing"
        """,
    )

    result.assert_outcomes(passed=1)


def test_pytest_plugin_marker_with_unknown_option_is_a_usage_error(
    suite: pytest.Pytester,
) -> None:
    result = _run(
        suite,
        """
        import pytest

        @pytest.mark.busignal(sevrice="billing")
        def test_typo(busignal_bus):
            pass
        """,
    )

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*unknown option(s) sevrice*"])


def test_pytest_plugin_docs_example_passes(pytester: pytest.Pytester) -> None:
    docs = Path(__file__).parents[2] / "docs" / "testing.md"
    blocks = re.findall(r"```python\n# (\w+)\.py\n(.*?)```", docs.read_text(), re.S)
    pytester.makepyfile(**dict(blocks))
    pytester.syspathinsert()

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error")

    assert {name for name, _ in blocks} == {"shop", "test_shop"}
    result.assert_outcomes(passed=5)
