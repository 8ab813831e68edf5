"""The `hubd` command. The one place where errors become messages and exit codes.

Every failure reaches the person as one line on standard error, `hubd: ...`, and an exit code
from the table in docs/exit-codes.md: hubd's own errors (HubdError) with their code, argparse's
usage errors as 64 like hubd's own, a library's exception hubd did not foresee as one line plus
"run with -v for details" (the traceback only with -v), a closed pipe silently as Unix tools do.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from hubd import __version__
from hubd.cli.commands import Subcommands, chosen_command, register_commands
from hubd.errors import HubdError, UsageError, from_foreign

TYPE_CHECKING = False  # as in hubd.cli.commands
if TYPE_CHECKING:
    import argparse

# Exit codes beyond those of the HubdError classes (docs/exit-codes.md).
EXIT_BUG = 70  # EX_SOFTWARE: an exception hubd did not foresee
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C
EXIT_SIGPIPE = 141  # 128 + SIGPIPE: the reader of our output went away


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser. With `argv`, only the command named there is built in full (and only its
    module imported); without, every command (for completion, the man page and tests)."""
    from hubd.cli.parser import HubdParser  # argparse (and `re`) only when a parser is built

    parser = HubdParser(
        prog="hubd",
        description="JupyterHub at home: run it on Docker, keep it up, find it as jupyter.local.",
        epilog="Run `hubd COMMAND --help` for a command's options and an example. "
        "Exit codes: docs/exit-codes.md (`hubd man` shows them too).",
    )
    parser.add_argument("--version", action="version", version=f"hubd {__version__}")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="config file; it must exist (default: see `hubd config path`)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log debug messages; tracebacks of bugs"
    )
    commands: Subcommands = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=HubdParser
    )
    chosen = chosen_command(argv) if argv is not None else None
    register_commands(commands, chosen, everything=argv is None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """`hubd ARGS...`; with `argv` None, the program itself (may end by SIGPIPE)."""
    as_program = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = any(word in ("-v", "--verbose") for word in argv)
    try:
        code = _run(argv)
        # Flushed here, not at exit: a reader that went away is then seen below.
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        return _stdout_closed(as_program)
    except HubdError as exc:
        return _fail(str(exc), exc.exit_code, as_program)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED, as_program)
    except Exception as exc:  # the catch-all: never a traceback unless asked for
        known = from_foreign(exc)
        if known is not None:
            return _fail(str(known), known.exit_code, as_program)
        if verbose:
            import traceback

            traceback.print_exc()
        text = str(exc).strip().splitlines()
        detail = f": {text[0]}" if text else ""
        hint = "" if verbose else "; run with -v for details"
        message = f"unexpected error ({type(exc).__name__}{detail}){hint}"
        return _fail(message, EXIT_BUG, as_program)


def _run(argv: list[str]) -> int:
    if argv == ["--version"]:  # asked by scripts and package checks: answered before argparse
        print(f"hubd {__version__}")
        return 0
    parser = build_parser(argv)
    if chosen_command(argv) is None and not {"-h", "--help", "--version"} & set(argv):
        # Bare `hubd` (perhaps with -v or --config): the help, as the answer to "what now?".
        parser.print_help()
        return 0
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, --version: printed; flushed by main like the rest
        return int(done.code or 0)
    if getattr(args, "handler", None) is None:
        raise UsageError(f"{args.command}: say what to do (see `hubd {args.command} --help`)")
    _check_config_option(args)
    # Commands that only print (`config path`, `completion`, `man`) log nothing: they skip
    # importing logging, a fifth of `hubd config path`'s start.
    if getattr(args, "logs", True):
        _setup_logging(args.verbose)
    result: int = args.handler(args)
    return result


def _check_config_option(args: argparse.Namespace) -> None:
    """`--config FILE` names a file that must be there: a typo must not silently mean the
    defaults. (The default file may be missing: then the defaults are in effect.)"""
    given = getattr(args, "config", None)
    if given is None:
        return
    if not os.path.exists(given):
        raise UsageError(f"--config {given}: no such file")
    if os.path.isdir(given):
        raise UsageError(f"--config {given}: is a folder, not a config file")


def _setup_logging(verbose: bool) -> None:
    import logging

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # The Docker SDK and urllib3 are chatty at debug level.
    for noisy in ("urllib3", "docker"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _fail(message: str, code: int, as_program: bool) -> int:
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        return _stdout_closed(as_program)
    print(f"hubd: {message}", file=sys.stderr)
    return _service_exit_code(code)


def _service_exit_code(code: int) -> int:
    """Under launchd a config error exits 0: launchd has no RestartPreventExitStatus, and its
    KeepAlive (SuccessfulExit=false) would start a hubd with a bad config every 10 s forever."""
    from hubd.errors import FIX_THE_CONFIG_EXIT_CODES, SERVICE_MANAGER_ENV

    if os.environ.get(SERVICE_MANAGER_ENV) == "launchd" and code in FIX_THE_CONFIG_EXIT_CODES:
        print(
            f"hubd: (exit status {code} reported as 0, so that launchd does not start hubd "
            "again: fix the above, then `hubd service install` again)",
            file=sys.stderr,
        )
        return 0
    return code


def _stdout_closed(as_program: bool) -> int:
    """The reader of standard output went away (`hubd config show | head -1`): stop quietly,
    as a Unix tool killed by SIGPIPE does, with its exit status (141 in a shell)."""
    if not as_program:  # called from Python (tests): leave the caller's streams alone
        return EXIT_SIGPIPE
    import signal

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # nothing left to flush at exit: no noise
    except (OSError, ValueError):
        pass
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGPIPE)
    return EXIT_SIGPIPE
