"""The ``devpi-lifecycle`` command line (also ``python -m components.lifecycle``).

Human output by default, ``--json`` for CI; on failure a non-zero exit and one line on stderr
(``devpi-lifecycle: error: …``), never a traceback: exit 2 for a bad option or argument value (found
before anything is sent to the server), 1 for any other failure. Nothing is deleted without ``--yes``
(or a confirmation typed at a terminal), and non-volatile indexes also need ``--force``. ``--timeout``
bounds every wait for the server, retries included, so a server that is down or hangs fails the
command within that time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TextIO

from rich.console import Group, RenderableType

from components.config.defaults import DEFAULT_REPLICA_MAX_LAG
from components.config.errors import ConfigError
from components.config.retention import RetentionPolicy
from components.devpi.client import DevpiClient, RetryPolicy, ca_bundle_file
from components.devpi.errors import DevpiError
from components.devpi.names import index_spec_problem

from . import backup as backup_mod
from . import du as du_mod
from . import promote as promote_mod
from . import prune as prune_mod
from . import remove as remove_mod
from . import status as status_mod
from .common import BusyGate, BusyLimits, LifecycleError, Progress, UsageError, make_console, show
from .connection import Connection, StackConfig, read_stack_config, resolve_connection

__all__ = ["build_parser", "main"]

PROG = "devpi-lifecycle"

EPILOG = """\
connection:
  server URL from --url, DEVPI_URL, or --stack-config Pulumi.<stack>.yaml (serverUrl, or host.address
  + server.port; the user is then root). User from --user or DEVPI_USER. The password ONLY from the
  environment variable DEVPI_PASSWORD, --password-file FILE, or a prompt at a terminal — there is no
  --password flag, because arguments are visible to everyone in `ps`.
  --timeout SECONDS (default 30) bounds every wait for the server, retries and pauses between them
  included: a server that is down, refuses or does not answer fails the command within that time.

https: the server's certificate is checked against --ca-bundle FILE (PEM), else the stack file's
  tls.caBundle, else REQUESTS_CA_BUNDLE, else the public CAs. The stack's own CA comes before
  REQUESTS_CA_BUNDLE because that variable is often set shell-wide to another (corporate) bundle.
  A stack file that declares tls refuses a plain http:// server or replica URL (exit 2): no password
  crosses the network in clear. A certificate that is not trusted, does not cover the URL's name or
  has expired fails the command at once (exit 1), naming the URL and what was trusted.

examples:
  export DEVPI_URL=http://devpi.example:3141 DEVPI_USER=build_bot
  read -rs DEVPI_PASSWORD && export DEVPI_PASSWORD
  devpi-lifecycle promote geek-utils==0.1.0 --from build_bot/nightly --to build_bot/stable
  devpi-lifecycle remove geek-utils==0.1.0.dev1 --index build_bot/nightly --yes
  devpi-lifecycle remove geek-utils --index build_bot/stable --force --yes
  devpi-lifecycle prune --index build_bot/nightly --keep-last 10 --only-prereleases     # dry run
  devpi-lifecycle prune --index build_bot/nightly --max-age-days 30 --exclude 'keepme*' --yes
  devpi-lifecycle prune --stack-config Pulumi.dev.yaml --yes    # every declared retention policy
  devpi-lifecycle du --json
  devpi-lifecycle status --stack-config Pulumi.dev.yaml
  devpi-lifecycle status --url https://devpi.example --ca-bundle ca.pem --replica https://devpi-eu.example
  devpi-lifecycle backup --serverdir /opt/local/devpi/data --to /var/backups/devpi --keep 7
  devpi-lifecycle restore /var/backups/devpi/devpi-export-20260101T020000Z.tar.gz --serverdir /srv/new

exit status: 0 success; 1 failure (one line on stderr); 2 usage error: a bad option or argument
  value (an index that is not USER/INDEX, a version with '/', --timeout 0, a truncated or foreign
  backup archive, an unreadable --ca-bundle, http:// for a TLS stack), one line on stderr, found
  before anything is sent to the server or written; 3 status found drift or a replica problem.
"""

JSON_ON_FAILURE = '''  on failure: {"error": MESSAGE} (the line printed on stderr), unless the options themselves
  were refused (exit 2 before the command ran)'''

# what each command prints with --json: every key appears here in double quotes (a test checks it)
JSON_OUTPUT = {
    "promote": '''  {"project", "version", "from", "to", "action": "pushed" | "copied" | "already-present",
   "files": [{"filename", "sha256"}]}  (the files verified in the target)''',
    "remove": '''  {"removed": {"index", "project", "version" (null for a whole project), "versions", "volatile"}}''',
    "prune": '''  {"indexes": [{"index", "policy": {"keepLast", "maxAgeDays", "onlyPrereleases", "include", "exclude"},
     "applied", "volatile", "skipped_projects", "versions", "to_remove", "removed", "busy_pauses",
     "decisions": [{"project", "version", "action": "remove" | "keep", "reason"}]}]}
  (policy holds only the rules given; versions, to_remove and removed are counts)''',
    "du": '''  {"users": [...], "indexes": [...], "projects": [...]}, each list of {"name", "bytes", "files"},
  largest first''',
    "status": '''  {"url", "reachable", "version", "serial", "event_serial", "role", "busy" (null or why),
   "error" (null or why unreachable), "drift" (null without --stack-config, else a list of
   {"kind", "name", "expected", "actual"}),
   "nodes": [{"name" (null for an undeclared replica), "url", "role": "primary" | "replica",
     "declared", "reachable" (null: undeclared, not asked), "serial", "lag" (primary serial minus
     this node's), "last_contact" (ISO 8601 UTC or null), "seconds_since_contact",
     "problem" (null or why)}]  (the primary first),
   "ok" (reachable, no drift, no declared replica with a problem)}''',
    "backup": '''  {"archive", "bytes", "deleted_old": [names of the old archives removed]}''',
    "restore": '''  {"serverdir", "users", "indexes", "devpi_server_of_dump"}''',
}


def _epilog(command: str, text: str) -> str:
    return f"{text}\n\n--json output:\n{JSON_OUTPUT[command]}\n{JSON_ON_FAILURE}"


class _BadArguments(Exception):
    """An option or argument argparse refused; main() prints it as one line and exits 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is ONE line on stderr (``prog: error: message``) and exit 2,
    like every other failure of this tool, instead of the usage block and the message."""

    def error(self, message: str) -> NoReturn:
        raise _BadArguments(f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)")


def _index_arg(value: str) -> str:
    """argparse type of the USER/INDEX options: refused before anything is sent to the server."""
    problem = index_spec_problem(value)
    if problem is None:
        return value
    if "user/index" in problem:
        raise argparse.ArgumentTypeError(f"expected USER/INDEX such as build_bot/nightly, got {value!r}")
    raise argparse.ArgumentTypeError(f"expected USER/INDEX, got {value!r}: {problem}")


def _seconds_arg(value: str) -> float:
    """argparse type of --timeout: a finite number of seconds above 0."""
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds < math.inf:
        raise argparse.ArgumentTypeError(f"expected a number of seconds greater than 0, got {value!r}")
    return seconds


def _common() -> _Parser:
    p = _Parser(add_help=False, allow_abbrev=False)
    g = p.add_argument_group("connection and output")
    g.add_argument("--url", help="devpi-server URL (else DEVPI_URL, else the stack file)")
    g.add_argument("--user", help="user to act as (else DEVPI_USER; root with --stack-config)")
    g.add_argument("--password-file", type=Path, metavar="FILE",
                   help="read the password from FILE (else DEVPI_PASSWORD, else a prompt)")
    g.add_argument("--stack-config", type=Path, metavar="YAML", help="Pulumi.<stack>.yaml of this project")
    g.add_argument("--ca-bundle", type=Path, metavar="FILE",
                   help="PEM of the CA that issued the server's https certificate (else the stack file's "
                        "tls.caBundle, else REQUESTS_CA_BUNDLE)")
    g.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    g.add_argument("--timeout", type=_seconds_arg, default=30.0, metavar="SECONDS",
                   help="longest wait for the server, retries included: a server that is down or does not "
                        "answer fails the command within this time (default 30)")
    return p


def _replica_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--replica", action="append", default=[], metavar="URL",
                   help="a replica's URL (repeatable), besides those the stack file declares")


def command_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parser of each command (``promote``, ``du``, …) of a parser made by :func:`build_parser`."""
    return dict(getattr(parser, "commands", {}))


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = _Parser(
        prog=PROG, allow_abbrev=False,
        description="Package lifecycle for a devpi registry: promote, remove, prune, du, status, "
                    "backup, restore.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parser.commands = sub.choices  # type: ignore[attr-defined]  # read back by command_parsers()

    def add(name: str, help_: str, epilog: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], help=help_, description=help_, epilog=_epilog(name, epilog),
                              allow_abbrev=False,
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    p = add("promote", "copy a version to another index via devpi push and verify every sha256",
            "Idempotent: when the target already holds identical files, nothing is pushed.\n"
            "example: devpi-lifecycle promote geek-utils==0.1.0 --from build_bot/nightly --to build_bot/stable")
    p.add_argument("spec", metavar="NAME==VERSION")
    p.add_argument("--from", dest="source", required=True, metavar="USER/INDEX", type=_index_arg,
                   help="index holding the version's files (e.g. build_bot/nightly)")
    p.add_argument("--to", dest="target", required=True, metavar="USER/INDEX", type=_index_arg,
                   help="index to promote into; the acting user must be in its acl_upload")

    p = add("remove", "delete a version (NAME==VERSION) or a whole project (NAME) from one index",
            "Asks for confirmation at a terminal; elsewhere --yes is required.\n"
            "Non-volatile indexes also need --force (devpi's ?force delete).\n"
            "example: devpi-lifecycle remove geek-utils==0.1.0.dev1 --index build_bot/nightly --yes")
    p.add_argument("spec", metavar="NAME[==VERSION]")
    p.add_argument("--index", required=True, metavar="USER/INDEX", type=_index_arg)
    p.add_argument("--force", action="store_true", help="allow deleting from a non-volatile index")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")

    p = add("prune", "apply a retention policy to an index (dry run unless --yes)",
            "A version is removed only if every rule given agrees: beyond the newest --keep-last of its\n"
            "project AND older than --max-age-days (age = first upload/push time of its files).\n"
            "--only-prereleases limits removals (and --keep-last counting) to dev/pre-releases (PEP 440).\n"
            "Without --index, --stack-config applies every retention declared in devpi-registry:indexes.\n"
            "Deletes pause while /+status shows the server busy (event backlog, lagging replica).\n"
            "Declared replicas (the stack file's replicas, or --replica URL) are also asked for their own\n"
            "/+status: one more than 1000 serials behind pauses the deletes; one that cannot be reached is\n"
            "reported on stderr and not waited for (it catches up from the changelog when it is back).\n"
            "examples:\n"
            "  devpi-lifecycle prune --index build_bot/nightly --keep-last 5 --only-prereleases\n"
            "  devpi-lifecycle prune --index build_bot/nightly --max-age-days 30 --include 'geek-*' --yes")
    p.add_argument("--index", metavar="USER/INDEX", type=_index_arg)
    p.add_argument("--keep-last", type=int, metavar="N")
    p.add_argument("--max-age-days", type=int, metavar="D")
    p.add_argument("--only-prereleases", action="store_true")
    p.add_argument("--include", action="append", default=[], metavar="GLOB", help="project glob (repeatable)")
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB", help="project glob (repeatable)")
    p.add_argument("--yes", "-y", action="store_true", help="apply (default: dry run)")
    p.add_argument("--force", action="store_true", help="allow deleting from non-volatile indexes")
    p.add_argument("--max-wait", type=float, default=300.0, metavar="SECONDS",
                   help="longest pause while the server is busy before giving up (default 300)")
    p.add_argument("--max-event-lag", type=int, default=BusyLimits().max_event_lag, metavar="COMMITS",
                   help="pause while event processing is more than this many commits behind")
    p.add_argument("--jobs", type=int, default=4, metavar="N",
                   help="deletes in flight (default 4; devpi still commits them one at a time)")
    p.add_argument("--verbose", "-v", action="store_true", help="also list kept versions with reasons")
    _replica_option(p)

    p = add("du", "bytes and file counts per user, index and project, largest first",
            "Sizes via HEAD Content-Length on one keep-alive session, or with --serverdir from the\n"
            "data folder on this host (faster for big servers).\nexample: devpi-lifecycle du --json")
    p.add_argument("--index", metavar="USER/INDEX", type=_index_arg, help="only this index")
    p.add_argument("--serverdir", type=Path, metavar="DIR", help="devpi data folder on this host")

    p = add("status", "server reachable, version, serial, load, every node (primary and replicas) with its "
            "lag; with --stack-config: drift from the stack",
            "Nodes: the primary, each replica the stack file declares (replicas) or --replica names, and\n"
            "any other replica polling the primary. Lag = the primary's serial minus the node's; last\n"
            "contact from the primary's view of the replica, else from the replica's own /+status.\n"
            "exit 3 when the server differs from the stack file, or a declared replica is unreachable, is\n"
            "not a replica, or lags more than its maxLag (stack file; --replica: 10) serials.\n"
            "example: devpi-lifecycle status --stack-config Pulumi.dev.yaml")
    _replica_option(p)

    p = add("backup", "devpi-export a server dir (safe while it runs) into a timestamped tar.gz",
            "Keeps the newest --keep archives named devpi-export-YYYYmmddTHHMMSSZ.tar.gz in --to.\n"
            "example: devpi-lifecycle backup --serverdir /opt/local/devpi/data --to /var/backups/devpi --keep 7")
    p.add_argument("--serverdir", type=Path, required=True, metavar="DIR")
    p.add_argument("--to", type=Path, required=True, metavar="ARCHIVE_DIR")
    p.add_argument("--keep", type=int, default=7, metavar="N")

    p = add("restore", "devpi-import a backup archive into a new, empty server dir",
            "Start devpi-server on the new dir afterwards (same passwords as at backup time).\n"
            "example: devpi-lifecycle restore ARCHIVE.tar.gz --serverdir /srv/devpi-restored")
    p.add_argument("archive", type=Path)
    p.add_argument("--serverdir", type=Path, required=True, metavar="DIR")
    return parser


class App:
    """Runs one parsed command; stdout/stderr/stdin and the environment injectable for tests.

    Human output and progress bars go through rich consoles on ``out`` and ``err`` (plain text
    unless the stream is a terminal); ``--json`` documents are written to ``out`` as they are.
    """

    def __init__(self, args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO,
                 env: dict[str, str] | None = None) -> None:
        self.args, self.out, self.err, self.stdin = args, out, err, stdin
        self.env = env
        self.out_console = make_console(out, env)
        self.err_console = make_console(err, env)
        self.stack: StackConfig | None = read_stack_config(args.stack_config) if args.stack_config else None
        self.ca_bundle, self.ca_label = self._trust()
        self.make_client: Callable[[], DevpiClient] | None = None
        self.emitted = False  # the command's --json document is out (an error then adds no second one)

    @property
    def environ(self) -> Mapping[str, str]:
        return self.env if self.env is not None else os.environ

    @property
    def tls_stack(self) -> bool:
        """The stack file declares tls: every URL must be https."""
        return self.stack is not None and self.stack.tls is not None

    def _trust(self) -> tuple[str | None, str | None]:
        """The CA bundle (PEM) to trust and where it came from: --ca-bundle, else the stack file's
        tls.caBundle, else REQUESTS_CA_BUNDLE (read here, so a bad path is a usage error, not a
        traceback from requests), else None (the public CAs). Read before anything is sent."""
        if self.args.ca_bundle is not None:
            return self._read_ca(self.args.ca_bundle, "--ca-bundle")
        if self.stack is not None and self.stack.ca_bundle:
            label = f"tls.caBundle of {self.args.stack_config}"
            try:
                ca_bundle_file(self.stack.ca_bundle)
            except ValueError as exc:
                raise UsageError(f"{label}: {exc}") from exc
            return self.stack.ca_bundle, label
        env = self.environ.get("REQUESTS_CA_BUNDLE") or self.environ.get("CURL_CA_BUNDLE")
        if env:
            return self._read_ca(Path(env), "REQUESTS_CA_BUNDLE")
        return None, None

    @staticmethod
    def _read_ca(path: Path, source: str) -> tuple[str, str]:
        try:
            pem = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            why = getattr(exc, "strerror", None) or "not a text file"
            raise UsageError(f"cannot read the CA bundle {source} {path}: {why}") from exc
        try:
            ca_bundle_file(pem)
        except ValueError as exc:
            raise UsageError(f"{source} {path}: {exc}") from exc
        return pem, f"{source} {path}"

    def _require_https(self, url: str, what: str) -> None:
        if self.tls_stack and not url.lower().startswith("https://"):
            raise UsageError(f"{what} {url} is plain http, but the stack {self.args.stack_config} declares tls "
                             "(devpi is served over https): use the https:// URL, so no password crosses the "
                             "network in clear")

    def replica_targets(self) -> list[status_mod.NodeTarget]:
        """The declared replicas (stack file, then --replica), each with an anonymous client."""
        named: dict[str, tuple[str, int | None]] = {}
        for replica in self.stack.replicas if self.stack is not None else ():
            named.setdefault(replica.url.rstrip("/"), (replica.name, replica.max_lag))
        for url in getattr(self.args, "replica", None) or []:
            named.setdefault(url.rstrip("/"), (url.rstrip("/"), DEFAULT_REPLICA_MAX_LAG))
        targets = []
        for url, (name, max_lag) in named.items():
            self._require_https(url, "replica URL")
            targets.append(status_mod.NodeTarget(name, self._connect(Connection(url=url)), max_lag))
        return targets

    def client(self, *, need_password: bool) -> DevpiClient:
        conn = resolve_connection(url=self.args.url, user=self.args.user, password_file=self.args.password_file,
                                  stack=self.stack, env=self.env if self.env is not None else os.environ,
                                  interactive=self.stdin.isatty(), need_password=need_password)
        self._require_https(conn.url, "server URL")
        client = self._connect(conn)
        # more clients with the same connection (parallel deletes); the password stays in memory only
        self.make_client = lambda: self._connect(conn)
        return client

    def _connect(self, conn: Connection) -> DevpiClient:
        """A client each of whose requests ends within --timeout, retries and their pauses included."""
        try:
            return DevpiClient(conn.url, conn.user, conn.password, timeout=self.args.timeout,
                               retry=RetryPolicy(budget=self.args.timeout), ca_bundle=self.ca_bundle,
                               ca_label=self.ca_label, require_https=self.tls_stack)
        except ValueError as exc:
            raise LifecycleError(str(exc)) from exc

    def note(self, message: str) -> None:
        """One line on stderr (above a running progress bar, which rich redraws below it)."""
        self.err_console.print(message, soft_wrap=True)

    def emit(self, data: Any, human: RenderableType) -> None:
        self.emitted = True
        if self.args.json:
            self.out.write(json.dumps(data, indent=2, default=str) + "\n")
        else:
            show(self.out_console, human)

    def progress(self) -> Callable[[int, str], Progress]:
        return lambda total, label: Progress(total, label, self.err_console)

    def confirm(self, question: str) -> None:
        if self.args.yes:
            return
        if not self.stdin.isatty():
            raise LifecycleError("refusing to delete without --yes: stdin is not a terminal to confirm on")
        self.err.write(f"{question} [y/N] ")
        self.err.flush()
        if self.stdin.readline().strip().lower() not in ("y", "yes"):
            raise LifecycleError("cancelled, nothing was removed")

    # ------------------------------------------------------------------------------------ commands
    def promote(self) -> int:
        name, version = promote_mod.parse_requirement(self.args.spec, version_required=True)
        assert version is not None
        with self.client(need_password=True) as c:
            result = promote_mod.promote(c, name, version, self.args.source, self.args.target)
        self.emit(result.to_json(), result.human())
        return 0

    def remove(self) -> int:
        name, version = promote_mod.parse_requirement(self.args.spec, version_required=False)
        with self.client(need_password=True) as c:
            plan = remove_mod.plan_remove(c, self.args.index, name, version)
            if not plan.volatile and not self.args.force:
                raise LifecycleError(f"{plan.index} is non-volatile: removing from it needs --force "
                                     "(devpi's ?force delete); nothing was removed")
            self.confirm(f"remove {plan.describe()}?")
            remove_mod.apply_remove(c, plan, force=self.args.force)
        self.emit({"removed": plan.to_json()}, f"removed {plan.describe()}")
        return 0

    def _policy_from_flags(self) -> RetentionPolicy | None:
        a = self.args
        raw: dict[str, Any] = {"keepLast": a.keep_last, "maxAgeDays": a.max_age_days,
                               "onlyPrereleases": a.only_prereleases or None,
                               "include": a.include or None, "exclude": a.exclude or None}
        if all(v is None for v in raw.values()):
            return None
        return RetentionPolicy.from_config(raw, "prune options")

    def _prune_targets(self) -> list[tuple[str, RetentionPolicy]]:
        """(index, policy) pairs: --index with the flags' policy (else the stack file's for it), or
        every retention the stack file declares."""
        policy = self._policy_from_flags()
        if self.args.index:
            if policy is None and self.stack is not None:
                decl = self.stack.find_index(self.args.index)
                policy = decl.retention if decl else None
            if policy is None:
                raise LifecycleError("no retention policy: give --keep-last and/or --max-age-days "
                                     "(or a --stack-config declaring retention for this index)")
            return [(self.args.index, policy)]
        if self.stack is None:
            raise LifecycleError("prune needs --index USER/INDEX or --stack-config Pulumi.<stack>.yaml")
        if policy is not None:
            raise LifecycleError("policy flags need --index; with only --stack-config the declared "
                                 "policies apply")
        targets = [(d.full_name, d.retention) for d in self.stack.indexes if d.retention is not None]
        if not targets:
            raise LifecycleError(f"{self.args.stack_config} declares no retention on any index")
        return targets

    def prune(self) -> int:
        targets = self._prune_targets()
        reports = []
        with self.client(need_password=self.args.yes) as c, contextlib.ExitStack() as closing:
            replicas = {t.name: closing.enter_context(t.client).status for t in self.replica_targets()}
            gate = BusyGate(c.status, replicas=replicas, limits=BusyLimits(max_event_lag=self.args.max_event_lag),
                            max_wait=self.args.max_wait, notify=self.note)
            now = datetime.now(UTC)
            for index, pol in targets:
                reports.append(prune_mod.prune_index(c, index, pol, now=now, apply=self.args.yes,
                                                     force=self.args.force, gate=gate, progress=self.progress(),
                                                     jobs=self.args.jobs, make_client=self.make_client))
        self.emit({"indexes": [r.to_json() for r in reports]},
                  Group(*(r.human(self.args.verbose) for r in reports)))
        return 0

    def du(self) -> int:
        with self.client(need_password=False) as c:
            rows = du_mod.aggregate(du_mod.measure(c, index=self.args.index, serverdir=self.args.serverdir,
                                                   progress=self.progress()))
        self.emit(du_mod.to_json(rows), du_mod.render(rows))
        return 0

    def status(self) -> int:
        with self.client(need_password=False) as c, contextlib.ExitStack() as closing:
            replicas = self.replica_targets()
            for target in replicas:
                closing.enter_context(target.client)
            report = status_mod.gather(c, self.stack, time.time(), replicas)
        self.emit(report.to_json(), report.human())
        if not report.reachable:  # why, in devpi-lifecycle's one line (refused, timed out after N s, ...)
            raise LifecycleError(report.error or f"devpi-server at {report.url} is unreachable")
        return 3 if report.drift or report.node_problems else 0

    def backup(self) -> int:
        result = backup_mod.backup(self.args.serverdir, self.args.to, keep=self.args.keep,
                                   now=datetime.now(UTC))
        self.emit(result.to_json(), result.human())
        return 0

    def restore(self) -> int:
        info = backup_mod.restore(self.args.archive, self.args.serverdir)
        self.emit(info, f"restored {len(info['indexes'])} indexes of {len(info['users'])} users into "
                        f"{info['serverdir']}; start devpi-server on it")
        return 0


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None,
         stdin: TextIO | None = None, env: dict[str, str] | None = None) -> int:
    out, err, stdin = out or sys.stdout, err or sys.stderr, stdin or sys.stdin
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a.startswith("--passw") and a.split("=")[0] != "--password-file" for a in argv):
        # argparse would echo the value in its "unrecognized arguments" message
        err.write(f"{PROG}: error: there is no --password option (arguments are visible in `ps`); use "
                  "DEVPI_PASSWORD, --password-file FILE or the prompt\n")
        return 2
    try:
        args = build_parser().parse_args(argv)
    except _BadArguments as exc:
        err.write(f"{exc}\n")
        return 2
    app: App | None = None
    try:
        app = App(args, out, err, stdin, env)
        return int(getattr(app, args.command.replace("-", "_"))())
    except (LifecycleError, DevpiError, ConfigError) as exc:
        err.write(f"{PROG}: error: {_one_line(exc)}\n")
        if args.json and not (app is not None and app.emitted):  # CI parsing stdout gets the reason too
            out.write(json.dumps({"error": _one_line(exc)}) + "\n")
        return 2 if isinstance(exc, UsageError) else 1
    except KeyboardInterrupt:
        err.write(f"{PROG}: error: interrupted\n")
        return 130
