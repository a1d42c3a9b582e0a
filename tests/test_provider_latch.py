"""InitialValue: the first value is kept forever, so the container env never changes on rotation."""

from __future__ import annotations

import socket

import pytest

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

    def test_latch_needs_no_configuration_or_network(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def no_network(*_args: object) -> None:
            raise AssertionError("the latch opened a network connection")

        monkeypatch.setattr(socket.socket, "connect", no_network)
        p = InitialValueProvider()  # never configured
        created = p.create({"value": "x"})
        assert (created.id, created.outs) == ("initial-value", {"value": "x"})
        assert p.update("initial-value", {"value": "x"}, {"value": "y"}).outs == {"value": "x"}
        assert p.read("initial-value", {"value": "x"}).outs == {"value": "x"}
        assert p.delete("initial-value", {"value": "x"}) is None
