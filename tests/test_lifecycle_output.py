"""Human output and progress bars (rich) stay plain text off a terminal: pipes, files and the tests'
StringIO get no escape codes, no progress redraws, no wrapped lines and no trailing blanks; at a
terminal the same output is styled and the bar is drawn."""

from __future__ import annotations

import io

from components.config.retention import Decision, Plan, RetentionPolicy
from components.lifecycle.common import Progress, make_console, show
from components.lifecycle.du import Usage, render
from components.lifecycle.prune import PruneReport
from components.lifecycle.status import Drift, StatusReport

LONG = "team/dev/" + "a-very-long-project-name-" * 12
ROWS = [Usage("user", "team", 3 * 1024 * 1024, 12), Usage("index", "team/dev", 3 * 1024 * 1024, 12),
        Usage("project", LONG, 2 * 1024 * 1024, 8), Usage("project", "team/dev/small", 1024 * 1024, 4)]
TERMINAL = {"FORCE_COLOR": "1", "COLUMNS": "100"}  # what a terminal looks like to rich


def printed(renderable: object, env: dict[str, str] | None = None) -> str:
    stream = io.StringIO()
    show(make_console(stream, {} if env is None else env), renderable)  # type: ignore[arg-type]
    return stream.getvalue()


class TestPlainTextOffATerminal:
    def test_du_tables_are_plain_unwrapped_and_without_trailing_blanks(self) -> None:
        text = printed(render(ROWS))
        assert "\x1b" not in text
        lines = text.splitlines()
        assert [ln for ln in lines if ln.endswith(":")] == ["users:", "indexes:", "projects:"]
        assert any(ln.endswith(LONG) for ln in lines), "a long name stays on its line (greppable)"
        assert all(ln == ln.rstrip() for ln in lines)
        assert "  2.0 MiB     8 " in text and "  1.0 MiB     4 team/dev/small" in text

    def test_no_color_keeps_a_terminal_free_of_colours(self) -> None:
        report = StatusReport(url="http://devpi", reachable=True, version="6.20.3", serial=1, event_serial=1,
                              role="primary", drift=[Drift("volatile", "team/dev", False, True)])
        styled = printed(report.human(), TERMINAL)
        assert "\x1b[" in styled, "at a terminal the table header is styled"
        plain = printed(report.human(), {**TERMINAL, "NO_COLOR": "1"})
        assert "\x1b[3" not in plain and "\x1b[9" not in plain, "NO_COLOR: no foreground colours"
        assert "team/dev" in plain and "False" in plain and "True" in plain

    def test_markup_in_names_and_reasons_is_printed_as_it_is(self) -> None:
        plan = Plan((Decision("pkg", "1.0.dev1", True, "[bold]not markup[/bold] :smile:"),))
        report = PruneReport("team/dev", RetentionPolicy(keep_last=1), plan, applied=False, volatile=True)
        text = printed(report.human())
        assert "remove pkg==1.0.dev1 [bold]not markup[/bold] :smile:" in text

    def test_status_drift_table(self) -> None:
        report = StatusReport(url="http://devpi", reachable=True, version="6.20.3", serial=7, event_serial=7,
                              role="primary", drift=[Drift("missing-index", "team/gone"),
                                                     Drift("volatile", "team/dev", False, True)])
        lines = printed(report.human()).splitlines()
        assert lines[0] == "http://devpi: up, devpi-server 6.20.3, serial 7 (events at 7), role primary"
        assert lines[2] == "stack drift:"
        assert lines[3].split() == ["drift", "name", "stack", "server"]
        assert lines[4].split() == ["missing-index", "team/gone", "declared", "missing"]
        assert lines[5].split() == ["volatile", "team/dev", "False", "True"]


class TestProgress:
    def test_nothing_is_drawn_off_a_terminal(self) -> None:
        stream = io.StringIO()
        bar = Progress(3, "sizing files", make_console(stream, {}))
        for _ in range(3):
            bar.advance()
        bar.close()
        assert stream.getvalue() == ""

    def test_the_bar_is_drawn_at_a_terminal(self) -> None:
        stream = io.StringIO()
        bar = Progress(3, "sizing files", make_console(stream, TERMINAL))
        for _ in range(3):
            bar.advance()
        bar.close()
        assert "sizing files" in stream.getvalue() and "3/3" in stream.getvalue()
