"""What every command module shares: the typer apps, the error-to-exit-code mapping, quiet mode,
and the option choices, generated from the one table of each concept.

``cli`` (the auditor's commands) and ``cli_train`` (the trainer's) both import this module and never
each other's definitions, so the CLI has no import cycle.
"""

from __future__ import annotations

import functools
import os
from enum import Enum
from typing import TYPE_CHECKING, Any

import typer

from gfaudit.audit.onnx_model import DEVICES
from gfaudit.audit.parallel import EXECUTORS
from gfaudit.bundle.normalization import NORMALIZATIONS
from gfaudit.bundle.scoring import METHOD_RULES, RULES
from gfaudit.errors import GfauditError
from gfaudit.files import interrupt

__all__ = [
    "QUIET_HELP",
    "Device",
    "Executor",
    "Method",
    "Normalization",
    "Rule",
    "app",
    "bundle_app",
    "choices",
    "cli_errors",
    "err",
    "info",
    "library_app",
]


def choices(name: str, values) -> Any:
    """A typer choice type (a str Enum) whose members are ``values``, in order: the CLI offers exactly
    what the table holds."""
    return Enum(name, {v: v for v in values}, type=str)


if TYPE_CHECKING:  # what the type checker sees; at run time the enums come from the tables (tested equal)

    class Device(str, Enum):
        auto = "auto"
        cpu = "cpu"
        cuda = "cuda"

    class Normalization(str, Enum):
        imagenet = "imagenet"
        cifar10 = "cifar10"
        none = "none"

    class Rule(str, Enum):
        ard = "ard"
        label_match = "label_match"

    class Executor(str, Enum):
        local = "local"
        ray = "ray"

    class Method(str, Enum):
        ganfinger = "ganfinger"
        ipguard = "ipguard"
        conferae = "conferae"
        metafinger = "metafinger"
        deepfool = "deepfool"
        fgsm = "fgsm"
        custom = "custom"
else:
    Device = choices("Device", DEVICES)  # gfaudit.audit.onnx_model.DEVICES
    Normalization = choices("Normalization", NORMALIZATIONS)  # gfaudit.bundle.normalization.NORMALIZATIONS
    Rule = choices("Rule", RULES)  # gfaudit.bundle.scoring.RULES
    Executor = choices("Executor", EXECUTORS)  # gfaudit.audit.parallel.EXECUTORS (the trainer's are the same two)
    Method = choices("Method", METHOD_RULES)  # gfaudit.bundle.scoring.METHOD_RULES: what bundle create packs


app = typer.Typer(
    name="gfaudit",
    help="Prove that a deployed classifier derives from yours, with signed GanFinger fingerprints.",
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
bundle_app = typer.Typer(help="Create signed fingerprint bundles.", no_args_is_help=True, rich_markup_mode=None)
library_app = typer.Typer(
    help="Build suspect libraries for evaluation (needs gfaudit[train]).", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(bundle_app, name="bundle")
app.add_typer(library_app, name="library")


_STATE = {"quiet": False}


def err(message: str) -> None:
    typer.echo(f"gfaudit: {message}", err=True)


def info(message: str) -> None:
    """Progress, "wrote FILE" and warnings: silenced by --quiet (errors always print, through err)."""
    if not _STATE["quiet"]:
        err(message)


def _set_quiet(value: bool) -> bool:
    if value:
        _STATE["quiet"] = True
    return value


QUIET_HELP = "Print nothing on stderr unless the run fails."


def cli_errors(fn):
    """Turn library errors into one stderr line and the documented exit code; never a traceback.
    Ctrl-C, SIGTERM or SIGHUP inside the command unwinds (failure reports written, temporary files
    removed, workers killed), then exits 130, 143 or 129."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with interrupt.command_scope():
                return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except GfauditError as exc:
            err(f"error: {exc}")
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM or SIGHUP (interrupt.Interrupted)
            err(interrupt.message(exc))
            raise typer.Exit(interrupt.exit_code(exc)) from None
        except RecursionError:
            err("error: input nested too deeply")
            raise typer.Exit(4) from None
        except MemoryError:
            err("error: out of memory")
            raise typer.Exit(4) from None
        except Exception as exc:  # the last guard: a one-line report, exit 4
            if os.environ.get("GFAUDIT_DEBUG"):
                raise
            err(f"internal error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            raise typer.Exit(4) from None

    return wrapper
