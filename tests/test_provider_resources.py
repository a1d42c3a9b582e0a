"""The resource classes under Pulumi mocks: type tokens, seeded outputs, secret outputs, stateless providers."""

from __future__ import annotations

import base64

import pulumi

from components.providers import DevpiIndex, DevpiRoot, DevpiUser, IndexInputs, InitialValue, RootInputs, UserInputs
from tests.mocks import MockRecorder, is_secret, resolve, unwrap_secret, use_mocks
from tests.tokens import INDEX, LATCH, ROOT_ACCOUNT, USER


class TestResourceClasses:
    def test_type_tokens_and_inputs(self) -> None:
        recorder = MockRecorder()
        with use_mocks(recorder):
            user = DevpiUser("alice", UserInputs(name="alice", password=pulumi.Output.secret("pw"),
                                                 email="a@example.com"))
            index = DevpiIndex("alice-dev", IndexInputs(owner=user.name, name="dev", bases=["root/base"], volatile=False))
            latch = InitialValue("initial", value=pulumi.Output.secret("first"))
            root = DevpiRoot("root", RootInputs(password=pulumi.Output.secret("rootpw"), server_id="c1"))
            assert resolve(index.volatile) is False
            resolve(latch.urn), resolve(root.urn)
            assert resolve(user.email) == "a@example.com"
        assert recorder.types() == [INDEX, LATCH,
                                    ROOT_ACCOUNT, USER]
        u = recorder.one(USER).inputs
        assert unwrap_secret(u["password"]) == ("pw", True)
        assert "created" not in u or u["created"] is None
        i = recorder.one(INDEX).inputs
        assert i["owner"] == "alice" and i["bases"] == ["root/base"] and i["type"] == "stage"

    def test_pickled_providers_carry_no_credentials(self) -> None:
        recorder = MockRecorder()
        with use_mocks(recorder):
            bob = DevpiUser("bob", UserInputs(name="bob", password=pulumi.Output.secret("bob-secret-pw")))
            root = DevpiRoot("root", RootInputs(password=pulumi.Output.secret("root-secret-pw")))
            resolve(bob.urn), resolve(root.urn)
        for r in recorder.resources:
            blob, _ = unwrap_secret(r.inputs["__provider"])
            raw = base64.b64decode(blob)
            assert b"components.providers" in raw and len(raw) < 150
            assert b"secret-pw" not in raw

    def test_latch_output_is_secret(self) -> None:
        recorder = MockRecorder()
        with use_mocks(recorder):
            latch = InitialValue("initial", value=pulumi.Output.secret("first"))
            assert resolve(latch.value) == "first"
            assert is_secret(latch.value)
