"""remove and prune on real volatile and non-volatile indexes, the pure retention planner, and the
load gate that pauses deletes while devpi is busy."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from packaging.version import Version

from components.config.errors import ConfigError
from components.config.retention import RetentionPolicy, VersionInfo, plan_prune
from components.devpi.client import DevpiClient
from components.devpi.errors import NotFoundError
from components.lifecycle.cli import main
from components.lifecycle.common import BusyGate, BusyLimits, LifecycleError, busy_reason
from components.lifecycle.prune import prune_index, uploaded_at
from components.lifecycle.remove import apply_remove, missing_version_message, plan_remove
from tests.fixtures.team import Team
from tests.support import make_wheel

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)




def upload(team: Team, tmp: Path, index: str, name: str, versions: list[str]) -> None:
    for v in versions:
        team.client.upload(index, make_wheel(tmp / name / v, name, v), name=name, version=v)


def versions_on(client: DevpiClient, index: str, project: str) -> set[str]:
    try:
        return set(client.get_project(index, project))
    except NotFoundError:
        return set()


def history() -> list[str]:
    """53 versions: finals, a post release, alphas, release candidates and dev releases."""
    out = ["1.0.post1"]
    for minor in range(10):
        out += [f"1.{minor}", f"1.{minor}.dev1", f"1.{minor}a1", f"1.{minor}rc1"]
    out += [f"2.0.dev{n}" for n in range(1, 13)]
    return out


# ------------------------------------------------------------------------------------ real server
@pytest.mark.devpi
class TestPruneKeepsExactlyWhatThePolicySays:
    def test_keep_last_prereleases_on_history_of_53(self, team: Team, tmp_path: Path) -> None:
        idx = team.dev
        hist = history()
        assert len(hist) >= 50
        upload(team, tmp_path, idx, "hist-pkg", hist)
        policy = RetentionPolicy(keep_last=5, only_prereleases=True)
        report = prune_index(team.client, idx, policy, now=NOW, apply=True, force=False, jobs=4,
                             make_client=lambda: DevpiClient(team.url, team.user, team.password))
        finals = {v for v in hist if not Version(v).is_prerelease}
        pre_sorted = sorted((v for v in hist if Version(v).is_prerelease), key=Version, reverse=True)
        assert pre_sorted[:5] == ["2.0.dev12", "2.0.dev11", "2.0.dev10", "2.0.dev9", "2.0.dev8"]
        expected = finals | set(pre_sorted[:5])
        assert versions_on(team.client, idx, "hist-pkg") == expected
        assert {d.version for d in report.removed} == set(pre_sorted[5:])
        assert len(report.removed) == len(hist) - len(expected) == 37

    def test_dry_run_deletes_nothing(self, team: Team, tmp_path: Path) -> None:
        idx = team.dev
        upload(team, tmp_path, idx, "dry-pkg", ["1.0", "1.1", "1.2.dev1", "1.2.dev2"])
        serial = team.client.status()["serial"]
        report = prune_index(team.client, idx, RetentionPolicy(keep_last=1), now=NOW, apply=False, force=False)
        assert [d.version for d in report.plan.removals] == ["1.0", "1.1", "1.2.dev1"]
        assert report.removed == []
        assert versions_on(team.client, idx, "dry-pkg") == {"1.0", "1.1", "1.2.dev1", "1.2.dev2"}
        assert team.client.status()["serial"] == serial

    def test_max_age_and_project_globs(self, team: Team, tmp_path: Path) -> None:
        idx = team.dev
        upload(team, tmp_path, idx, "app-core", ["1.0", "1.1"])
        upload(team, tmp_path, idx, "app-keep", ["1.0", "1.1"])
        upload(team, tmp_path, idx, "other", ["1.0"])
        policy = RetentionPolicy(max_age_days=5, include=("App_*",), exclude=("app-keep",))
        # versions were uploaded just now: as seen 10 days from now they are older than 5 days
        prune_index(team.client, idx, policy, now=datetime.now(UTC) + timedelta(days=10), apply=True, force=False)
        assert versions_on(team.client, idx, "app-core") == set()
        assert versions_on(team.client, idx, "app-keep") == {"1.0", "1.1"}
        assert versions_on(team.client, idx, "other") == {"1.0"}
        # seen today nothing is old enough
        upload(team, tmp_path / "again", idx, "app-core", ["2.0"])
        report = prune_index(team.client, idx, policy, now=datetime.now(UTC), apply=True, force=False)
        assert report.removed == [] and versions_on(team.client, idx, "app-core") == {"2.0"}

    def test_non_volatile_needs_force(self, team: Team, tmp_path: Path) -> None:
        idx = team.index("stable")
        upload(team, tmp_path, idx, "stable-pkg", ["1.0", "1.1", "1.2"])
        with pytest.raises(LifecycleError, match=r"non-volatile.*--force"):
            prune_index(team.client, idx, RetentionPolicy(keep_last=1), now=NOW, apply=True, force=False)
        assert versions_on(team.client, idx, "stable-pkg") == {"1.0", "1.1", "1.2"}
        report = prune_index(team.client, idx, RetentionPolicy(keep_last=1), now=NOW, apply=True, force=True)
        assert len(report.removed) == 2
        assert versions_on(team.client, idx, "stable-pkg") == {"1.2"}

    def test_cli_stack_config_applies_declared_policies(self, team: Team, tmp_path: Path) -> None:
        upload(team, tmp_path, team.dev, "decl-pkg", ["1.0", "1.1.dev1", "1.1.dev2", "1.1.dev3"])
        upload(team, tmp_path, team.index("stable"), "decl-pkg", ["1.0", "1.1"])
        stack = tmp_path / "Pulumi.dev.yaml"
        stack.write_text(
            "config:\n"
            f"  devpi-registry:serverUrl: {team.url}\n"
            "  devpi-registry:rootPassword:\n    secure: v1:AAAA\n"
            "  devpi-registry:indexes:\n"
            f"    - name: {team.dev}\n      volatile: true\n"
            "      retention: {keepLast: 1, onlyPrereleases: true}\n"
            f"    - name: {team.index('stable')}\n      volatile: false\n")
        out, err = io.StringIO(), io.StringIO()
        env = {"DEVPI_PASSWORD": team.password}
        args = ["prune", "--stack-config", str(stack), "--user", team.user, "--json", "--yes"]
        assert main(args, out=out, err=err, env=env) == 0, err.getvalue()
        assert versions_on(team.client, team.dev, "decl-pkg") == {"1.0", "1.1.dev3"}
        assert versions_on(team.client, team.index("stable"), "decl-pkg") == {"1.0", "1.1"}


@pytest.mark.devpi
class TestRemove:
    def test_version_and_project_on_volatile(self, team: Team, tmp_path: Path) -> None:
        idx = team.dev
        upload(team, tmp_path, idx, "rm-pkg", ["1.0", "1.1"])
        apply_remove(team.client, plan_remove(team.client, idx, "rm-pkg", "1.0"), force=False)
        assert versions_on(team.client, idx, "rm-pkg") == {"1.1"}
        plan = plan_remove(team.client, idx, "RM_Pkg", None)
        assert plan.project == "rm-pkg" and plan.versions == ("1.1",)
        apply_remove(team.client, plan, force=False)
        assert "rm-pkg" not in team.client.list_projects(idx)

    def test_non_volatile_needs_force(self, team: Team, tmp_path: Path) -> None:
        idx = team.index("stable")
        upload(team, tmp_path, idx, "rm-stable", ["1.0", "2.0"])
        plan = plan_remove(team.client, idx, "rm-stable", "1.0")
        with pytest.raises(LifecycleError, match="non-volatile"):
            apply_remove(team.client, plan, force=False)
        assert versions_on(team.client, idx, "rm-stable") == {"1.0", "2.0"}
        apply_remove(team.client, plan, force=True)
        assert versions_on(team.client, idx, "rm-stable") == {"2.0"}
        apply_remove(team.client, plan_remove(team.client, idx, "rm-stable", None), force=True)
        assert versions_on(team.client, idx, "rm-stable") == set()

    def test_cli_refuses_without_yes_when_not_a_terminal(self, team: Team, tmp_path: Path) -> None:
        idx = team.dev
        upload(team, tmp_path, idx, "ask-pkg", ["1.0"])
        err = io.StringIO()
        code = main(["remove", "ask-pkg==1.0", "--index", idx, "--url", team.url, "--user", team.user],
                    out=io.StringIO(), err=err, stdin=io.StringIO(""), env={"DEVPI_PASSWORD": team.password})
        assert code == 1
        assert "refusing to delete without --yes" in err.getvalue()
        assert versions_on(team.client, idx, "ask-pkg") == {"1.0"}

    def test_cli_confirmation_at_a_terminal(self, team: Team, tmp_path: Path) -> None:
        class Tty(io.StringIO):
            def isatty(self) -> bool:
                return True

        idx = team.dev
        upload(team, tmp_path, idx, "tty-pkg", ["1.0"])
        base = ["remove", "tty-pkg==1.0", "--index", idx, "--url", team.url, "--user", team.user]
        env = {"DEVPI_PASSWORD": team.password}
        err = io.StringIO()
        assert main(base, out=io.StringIO(), err=err, stdin=Tty("n\n"), env=env) == 1
        assert "cancelled" in err.getvalue() and versions_on(team.client, idx, "tty-pkg") == {"1.0"}
        assert main(base, out=io.StringIO(), err=io.StringIO(), stdin=Tty("yes\n"), env=env) == 0
        assert versions_on(team.client, idx, "tty-pkg") == set()

    def test_unknown_version_is_a_clear_error(self, team: Team, tmp_path: Path) -> None:
        idx = team.dev
        upload(team, tmp_path, idx, "known-pkg", ["1.0"])
        with pytest.raises(LifecycleError, match=r"known-pkg==9.9 is not on .* \(1 version there; closest: 1.0\)"):
            plan_remove(team.client, idx, "known-pkg", "9.9")

    def test_unknown_version_among_many_names_the_closest_and_the_count(self, team: Team, tmp_path: Path) -> None:
        idx = team.dev
        versions = [f"0.1.0.dev{n}" for n in range(1, 41)]
        upload(team, tmp_path, idx, "many-pkg", versions)
        err = io.StringIO()
        code = main(["remove", "many-pkg==0.1.0.dev400", "--index", idx, "--url", team.url, "--user", team.user,
                     "--yes"], out=io.StringIO(), err=err, env={"DEVPI_PASSWORD": team.password})
        line = err.getvalue().strip()
        assert code == 1 and "\n" not in line
        assert "many-pkg==0.1.0.dev400 is not on" in line and "(40 versions there; closest: " in line
        closest = line.rsplit("closest: ", 1)[1].rstrip(")").split(", ")
        assert 1 <= len(closest) <= 3 and set(closest) <= set(versions)
        assert "0.1.0.dev40" in closest
        assert len(line) < 200, line  # was every version: ~600 characters
        assert versions_on(team.client, idx, "many-pkg") == set(versions)


def test_missing_version_message_is_short_whatever_the_history() -> None:
    versions = [f"2.{m}.{p}" for m in range(30) for p in range(30)]  # 900 versions
    line = missing_version_message("p", "2.31.4", "u/i", versions)
    assert line.startswith("p==2.31.4 is not on u/i (900 versions there; closest: ")
    assert len(line) < 120 and line.count(",") == 2
    assert missing_version_message("p", "1", "u/i", []) == "p==1 is not on u/i (no versions there)"


# ----------------------------------------------------------------------------------------- pure
def vi(project: str, version: str, days_ago: float | None = None) -> VersionInfo:
    return VersionInfo(project, version, None if days_ago is None else NOW - timedelta(days=days_ago), 1)


class TestPlanPrune:
    def test_keep_last_orders_by_pep440_not_by_string(self) -> None:
        plan = plan_prune([vi("p", v) for v in ["1.9", "1.10", "1.2", "1.10.post1"]],
                          RetentionPolicy(keep_last=2), NOW)
        assert {d.version for d in plan.removals} == {"1.9", "1.2"}
        assert {d.version for d in plan.kept} == {"1.10", "1.10.post1"}

    def test_both_rules_must_agree(self) -> None:
        versions = [vi("p", "1.0", 100), vi("p", "1.1", 100), vi("p", "1.2", 1), vi("p", "1.3", 100)]
        plan = plan_prune(versions, RetentionPolicy(keep_last=1, max_age_days=30), NOW)
        # 1.3 newest (kept by keepLast), 1.2 too young, 1.0/1.1 beyond 1 and older than 30 days
        assert [d.version for d in plan.removals] == ["1.0", "1.1"]
        reasons = {d.version: d.reason for d in plan.decisions}
        assert "newest 1" in reasons["1.3"] and "within 30 days" in reasons["1.2"]
        assert "beyond the newest 1" in reasons["1.0"] and "older than 30 days" in reasons["1.0"]

    def test_only_prereleases_never_touches_finals_or_posts(self) -> None:
        versions = [vi("p", v, 400) for v in ["1.0", "1.0.post1", "1.1.dev1", "1.1a1", "1.1b2", "1.1rc1",
                                               "1.1.post1.dev1"]]
        plan = plan_prune(versions, RetentionPolicy(max_age_days=1, only_prereleases=True), NOW)
        assert {d.version for d in plan.removals} == {"1.1.dev1", "1.1a1", "1.1b2", "1.1rc1", "1.1.post1.dev1"}

    def test_unknown_age_and_invalid_versions_are_kept(self) -> None:
        plan = plan_prune([vi("p", "1.0"), vi("p", "not-a-version", 400), vi("p", "0.9", 400)],
                          RetentionPolicy(max_age_days=30), NOW)
        assert [d.version for d in plan.removals] == ["0.9"]
        reasons = {d.version: d.reason for d in plan.decisions}
        assert reasons["1.0"] == "no upload time recorded"
        assert reasons["not-a-version"] == "not a PEP 440 version"

    def test_globs_match_normalized_names(self) -> None:
        versions = [vi(p, "1.0", 99) for p in ["geek-utils", "geek-tools", "other"]]
        policy = RetentionPolicy(max_age_days=1, include=("Geek_*",), exclude=("geek.tools",))
        assert {d.project for d in plan_prune(versions, policy, NOW).removals} == {"geek-utils"}

    def test_each_project_counts_its_own_keep_last(self) -> None:
        versions = [vi(p, v) for p in ("a", "b") for v in ("1", "2", "3")]
        plan = plan_prune(versions, RetentionPolicy(keep_last=2), NOW)
        assert sorted((d.project, d.version) for d in plan.removals) == [("a", "1"), ("b", "1")]

    def test_uploaded_at_takes_earliest_log_time(self) -> None:
        data = {"+links": [
            {"rel": "releasefile", "href": "http://h/u/i/+f/a/b/x.whl", "hashes": {"sha256": "1"},
             "log": [{"what": "push", "when": [2026, 3, 1, 0, 0, 0]}, {"what": "upload", "when": [2026, 1, 2, 3, 4, 5]}]},
            {"rel": "doczip", "href": "http://h/u/i/+f/c/d/x.doc.zip", "log": [{"when": [2020, 1, 1, 0, 0, 0]}]},
        ]}
        assert uploaded_at(data) == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        assert uploaded_at({"+links": []}) is None


class TestRetentionPolicyFromConfig:
    PATH = "devpi-registry:indexes[0].retention"

    def test_round_trip(self) -> None:
        raw = {"keepLast": 3, "maxAgeDays": 14, "onlyPrereleases": True, "include": ["a*"], "exclude": ["ab"]}
        policy = RetentionPolicy.from_config(raw, self.PATH)
        assert policy == RetentionPolicy(keep_last=3, max_age_days=14, only_prereleases=True,
                                         include=("a*",), exclude=("ab",))
        assert policy.to_config() == raw

    @pytest.mark.parametrize(("raw", "where", "shown"), [
        ({"keepLast": -1}, ".keepLast", "-1"),
        ({"keepLast": True}, ".keepLast", "True"),
        ({"maxAgeDays": "7"}, ".maxAgeDays", "'7'"),
        ({"keepLast": 1, "onlyPrereleases": "yes"}, ".onlyPrereleases", "'yes'"),
        ({"keepLast": 1, "include": "a*"}, ".include", "'a*'"),
        ({"keepLast": 1, "exclude": [""]}, ".exclude[0]", "''"),
        ({"keepLast": 1, "keep_last": 2}, ".keep_last", "2"),
        ({"include": ["a"]}, "", "{'include': ('a',)}"),
    ])
    def test_errors_name_key_path_and_value(self, raw: dict, where: str, shown: str) -> None:
        with pytest.raises(ConfigError) as info:
            RetentionPolicy.from_config(raw, self.PATH)
        assert str(info.value).startswith(f"{self.PATH}{where}: ")
        assert f"(got {shown})" in str(info.value)

    def test_not_a_mapping(self) -> None:
        with pytest.raises(ConfigError, match=r"retention: must be an object"):
            RetentionPolicy.from_config([1], "retention")


class TestBusyGate:
    def test_busy_rule(self) -> None:
        base = {"serial": 5000, "event-serial": 4999, "role": "MASTER", "polling_replicas": {}}
        assert busy_reason(base, 0.0) is None
        assert "event processing is 2000 commits behind" in str(busy_reason({**base, "event-serial": 3000}, 0.0))
        lagging = {"r1-uuid-123": {"serial": 100, "last-request": 990.0}}
        assert "replica r1-uuid- is 4900 serials behind" in str(
            busy_reason({**base, "polling_replicas": lagging}, 1000.0))
        # a replica that stopped polling long ago is gone, not lagging
        assert busy_reason({**base, "polling_replicas": lagging}, 10_000.0) is None
        assert busy_reason({**base, "primary-serial": 9000}, 0.0) is not None

    def test_pauses_then_continues(self) -> None:
        statuses = iter([{"serial": 10, "event-serial": 0}, {"serial": 10, "event-serial": 5},
                         {"serial": 10, "event-serial": 10}])
        clock = [0.0]
        gate = BusyGate(lambda: next(statuses), limits=BusyLimits(max_event_lag=3), max_wait=60,
                        sleep=lambda s: clock.__setitem__(0, clock[0] + s), clock=lambda: clock[0])
        gate.check()
        assert gate.pauses == 1 and gate.paused_seconds == 2.0

    def test_gives_up_after_max_wait(self) -> None:
        clock = [0.0]
        gate = BusyGate(lambda: {"serial": 10, "event-serial": 0}, limits=BusyLimits(max_event_lag=3),
                        max_wait=5, sleep=lambda s: clock.__setitem__(0, clock[0] + s), clock=lambda: clock[0])
        with pytest.raises(LifecycleError, match="stayed busy for 5 s"):
            gate.check()

    def test_reads_status_at_most_every_interval(self) -> None:
        calls = []
        clock = [0.0]
        gate = BusyGate(lambda: calls.append(1) or {"serial": 1, "event-serial": 1}, interval=2.0,
                        clock=lambda: clock[0])
        for _ in range(10):
            gate.check()
            clock[0] += 0.5
        assert len(calls) == 3  # at t=0, 2.0, 4.0
