"""The one exception type for a user's mistake, the CLI edge that turns it into a one-line error, and the
arguments every stage takes."""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
from collections.abc import Callable

EXIT_USER_ERROR = 2


class UserError(Exception):
    """A problem with the user's input, files or configuration: reported in one line, exit code 2."""


class Terminated(BaseException):
    """Raised by a SIGTERM (or SIGHUP) handler so a run unwinds and cleans up as it does on Ctrl-C."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class ArgumentParser(argparse.ArgumentParser):
    """Argument mistakes are user errors too: one line on stderr and exit code 2."""

    def error(self, message: str):
        raise UserError(f"{message} (see --help)")


def cli_entry(main: Callable[..., int | None]) -> Callable[..., int]:
    """Wrap a command's ``main`` so a UserError prints one line on stderr and exits with code 2.

    Bugs keep their traceback. A closed stdout (``predict … | head``) ends quietly; Ctrl-C and a handled SIGTERM
    end with one line and exit code 130 or 143.
    """

    @functools.wraps(main)
    def wrapper(*args, **kwargs) -> int:
        logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
        try:
            return main(*args, **kwargs) or 0
        except UserError as err:
            # One line, even when a library's message quoted in it spans several.
            print("error: " + " ".join(line.strip() for line in str(err).splitlines() if line.strip()),
                  file=sys.stderr)
            return EXIT_USER_ERROR
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        except Terminated as stop:
            print("terminated", file=sys.stderr)
            return 128 + stop.signum
        except BrokenPipeError:
            # The reader went away (e.g. `| head`): not an error, but stdout must not be flushed again.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 0

    return wrapper


def stage_args(description: str, argv: list[str] | None) -> argparse.Namespace:
    """The arguments every stage takes: only where the params file is."""
    parser = ArgumentParser(description=description)
    parser.add_argument("--params", default="configs/params.yaml", help="the params file (default: %(default)s)")
    return parser.parse_args(argv)
