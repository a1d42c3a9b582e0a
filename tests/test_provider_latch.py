"""InitialValue: the first value is kept forever, so the container env never changes on rotation."""

from __future__ import annotations

from components.providers.latch import InitialValueProvider


class TestInitialValueLatch:
    def test_first_value_survives_later_values(self) -> None:
        p = InitialValueProvider()
        inputs = p.check({}, {"value": "first"}).inputs
        outs = p.create(inputs).outs or {}
        assert outs == {"value": "first"}
        later = p.check(inputs, {"value": "rotated"}).inputs
        assert later == {"value": "first"}, "stored inputs keep the first value too"
        d = p.diff("initial-value", outs, {"value": "rotated"})
        assert d.changes is False and not d.replaces
        assert (p.update("initial-value", outs, {"value": "rotated"}).outs or {}) == {"value": "first"}
        assert p.read("initial-value", outs).outs == {"value": "first"}

    def test_latch_needs_no_configuration_or_network(self) -> None:
        p = InitialValueProvider()  # never configured
        p.delete("initial-value", {"value": "x"})
