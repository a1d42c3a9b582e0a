"""Promotion through devpi push: same bytes in the target, idempotent, refuses conflicts, explains denials,
and the promoted version installs with pip in strict mode from the target index."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from components.devpi.client import DevpiClient, ReleaseFile
from components.devpi.errors import NotFoundError
from components.lifecycle.common import LifecycleError
from components.lifecycle.promote import compare_files, parse_requirement, promote
from tests.fixtures.team import Team
from tests.support import make_wheel

pytestmark = pytest.mark.devpi




def own_hashes(client: DevpiClient, index: str, name: str, version: str) -> dict[str, str]:
    try:
        client.get_version(index, name, version)
    except NotFoundError:
        return {}
    return {f.filename: f.sha256 for f in client.release_files(index, name, version) if f.index == index}


class TestPromoteCopiesIdenticalFiles:
    def test_hashes_match_after_push(self, team: Team, tmp_path: Path) -> None:
        wheel = make_wheel(tmp_path, "geek-utils", "0.1.0", payload="x = 1\n")
        team.client.upload(team.dev, wheel, name="geek-utils", version="0.1.0")
        result = promote(team.client, "geek-utils", "0.1.0", team.dev, team.stable)
        assert result.action == "pushed"
        source = own_hashes(team.client, team.dev, "geek-utils", "0.1.0")
        target = own_hashes(team.client, team.stable, "geek-utils", "0.1.0")
        assert target == source and len(target) == 1
        assert dict(result.files) == source

    def test_rerun_with_identical_files_is_a_no_op_success(self, team: Team, tmp_path: Path) -> None:
        wheel = make_wheel(tmp_path, "geek-utils", "0.2.0")
        team.client.upload(team.dev, wheel, name="geek-utils", version="0.2.0")
        promote(team.client, "geek-utils", "0.2.0", team.dev, team.stable)
        serial_before = team.client.status()["serial"]
        again = promote(team.client, "geek-utils", "0.2.0", team.dev, team.stable)
        assert again.action == "already-present"
        # nothing was written: devpi's serial counts every commit
        assert team.client.status()["serial"] == serial_before

    def test_missing_file_on_non_volatile_target_is_copied(self, team: Team, tmp_path: Path) -> None:
        whl = make_wheel(tmp_path, "geek-utils", "0.3.0")
        team.client.upload(team.dev, whl, name="geek-utils", version="0.3.0")
        promote(team.client, "geek-utils", "0.3.0", team.dev, team.stable)
        # a second file for the same version appears on dev later (e.g. an sdist)
        sdist = tmp_path / "geek_utils-0.3.0.tar.gz"
        sdist.write_bytes(b"not really a tarball but devpi stores bytes")
        team.client.upload(team.dev, sdist, name="geek-utils", version="0.3.0")
        result = promote(team.client, "geek-utils", "0.3.0", team.dev, team.stable)
        assert result.action == "copied"
        assert own_hashes(team.client, team.stable, "geek-utils", "0.3.0") == \
            own_hashes(team.client, team.dev, "geek-utils", "0.3.0")


class TestPromoteRefusesConflicts:
    def test_different_content_in_target_names_the_fix(self, team: Team, tmp_path: Path) -> None:
        team.client.upload(team.dev, make_wheel(tmp_path / "a", "geek-utils", "1.0", payload="a = 1\n"),
                           name="geek-utils", version="1.0")
        team.client.upload(team.stable, make_wheel(tmp_path / "b", "geek-utils", "1.0", payload="b = 2\n"),
                           name="geek-utils", version="1.0")
        before = own_hashes(team.client, team.stable, "geek-utils", "1.0")
        with pytest.raises(LifecycleError, match=r"different content.*remove geek-utils==1.0 --index .*--force"):
            promote(team.client, "geek-utils", "1.0", team.dev, team.stable)
        assert own_hashes(team.client, team.stable, "geek-utils", "1.0") == before

    def test_push_without_upload_permission_is_explained(self, team: Team, tmp_path: Path, unique: str) -> None:
        other = f"o{unique}"
        team.admin.create_user(other, "pw-other")
        team.admin.create_index(f"{other}/prod", {"volatile": False, "bases": []})
        team.client.upload(team.dev, make_wheel(tmp_path, "geek-utils", "2.0"), name="geek-utils", version="2.0")
        with pytest.raises(LifecycleError) as info:
            promote(team.client, "geek-utils", "2.0", team.dev, f"{other}/prod")
        message = str(info.value)
        assert f"user '{team.user}' may not upload to {other}/prod" in message
        assert "acl_upload" in message
        assert team.password not in message
        assert own_hashes(team.admin, f"{other}/prod", "geek-utils", "2.0") == {}

    def test_root_is_not_implied_in_acl_upload(self, team: Team, tmp_path: Path) -> None:
        team.client.upload(team.dev, make_wheel(tmp_path, "geek-utils", "2.1"), name="geek-utils", version="2.1")
        with pytest.raises(LifecycleError, match="user 'root' may not upload to"):
            promote(team.admin, "geek-utils", "2.1", team.dev, team.stable)

    def test_unknown_version_and_index(self, team: Team) -> None:
        with pytest.raises(LifecycleError, match="has no files on"):
            promote(team.client, "nothing-here", "1.0", team.dev, team.stable)
        with pytest.raises(LifecycleError, match="does not exist"):
            promote(team.client, "nothing-here", "1.0", team.dev, f"{team.user}/nosuch")


class TestPromotedVersionInstalls:
    def test_pip_strict_mode_from_stable(self, team: Team, tmp_path: Path) -> None:
        wheel = make_wheel(tmp_path / "dist", "geek-utils", "3.0.0", payload="ANSWER = 42\n")
        team.client.upload(team.dev, wheel, name="geek-utils", version="3.0.0")
        promote(team.client, "geek-utils", "3.0.0", team.dev, team.stable)
        target = tmp_path / "site"
        env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INPUT": "1",
               "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        env.pop("PIP_INDEX_URL", None)
        env.pop("PIP_EXTRA_INDEX_URL", None)
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--no-deps", "--no-cache-dir", "--target", str(target),
             "--index-url", f"{team.url}/{team.stable}/+simple/", "geek-utils==3.0.0"],
            capture_output=True, text=True, env=env, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert (target / "geek_utils" / "__init__.py").read_text().endswith("ANSWER = 42\n")
        with zipfile.ZipFile(wheel) as zf:
            assert zf.read("geek_utils/__init__.py") == (target / "geek_utils" / "__init__.py").read_bytes()


class TestPureParts:
    def test_parse_requirement(self) -> None:
        assert parse_requirement("Geek_Utils==1.0", version_required=True) == ("Geek_Utils", "1.0")
        assert parse_requirement("geek-utils", version_required=False) == ("geek-utils", None)
        for bad in ("geek-utils", "==1.0", "geek>=1.0", "geek=="):
            with pytest.raises(LifecycleError):
                parse_requirement(bad, version_required=True)

    def test_compare_files(self) -> None:
        def rf(name: str, sha: str) -> ReleaseFile:
            return ReleaseFile(name, sha, f"http://x/u/i/+f/abc/def/{name}", "u/i")

        c = compare_files([rf("a.whl", "1"), rf("b.tar.gz", "2"), rf("c.whl", "3")],
                          [rf("a.whl", "1"), rf("b.tar.gz", "9"), rf("d.whl", "4")])
        assert c.identical == ("a.whl",)
        assert c.missing == ("c.whl",)
        assert c.different == (("b.tar.gz", "2", "9"),)
        assert c.extra == ("d.whl",)
        assert not c.complete
