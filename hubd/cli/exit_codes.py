"""hubd's exit codes, in one table: the man page prints it, docs/exit-codes.md lists it (a
test holds them together), and the HubdError classes and the CLI use these numbers.

sysexits(3) style, as `os.EX_*`: argparse's usage errors exit 64 like hubd's own.
"""

from __future__ import annotations

EXIT_CODES: tuple[tuple[int, str, str], ...] = (
    (0, "OK", "done; also bare `hubd` (prints the help), `--help`, `--version`"),
    (1, "FAILED", "the operation failed (a stack, image, backup or control error), or a "
     "confirmation was declined"),
    (64, "USAGE", "the command line is wrong: unknown command or option, missing argument, "
     "`--config` file missing, a confirmation needed without a terminal"),
    (65, "DATAERR", "a user or node operation was refused: bad name, existing or missing user, "
     "short password, unknown node"),
    (69, "UNAVAILABLE", "Docker, the daemon or the service manager is not there or not "
     "answering; a port is in use"),
    (70, "SOFTWARE", "an error hubd did not foresee (a bug): one line, `-v` shows the traceback"),
    (73, "CANTCREAT", "hubd could not save its own state (a full disk, a read-only folder)"),
    (77, "NOPERM", "no permission: Docker's socket, or a folder or socket another account "
     "controls (e.g. /tmp/runtime-UID)"),
    (78, "CONFIG", "the config file or a HUBD_* variable is invalid"),
    (130, "INTERRUPTED", "interrupted with Ctrl-C (SIGINT); also how `hubd logs -f` ends, quietly"),
    (141, "SIGPIPE", "the reader of the output went away (`hubd config show | head -1`): "
     "ended quietly by SIGPIPE, as Unix tools are"),
)  # fmt: skip
