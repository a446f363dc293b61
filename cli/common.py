"""What every command shares: the consoles, literal markup, the one-line error exit and option parsing helpers.

Errors a user can cause (a bad length, an unknown material, a missing design, …) are shown as one red line on
stderr with exit code 2 and no traceback. Only the library's :class:`~quaton_fab.errors.QuatonFabError` and
``OSError`` (path + the system's reason) are treated so; anything else is a bug and keeps its traceback. Every
string that comes from the user or from a file is escaped before rich renders it (``[/x]`` in a path is text).
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import sys
from typing import Any, Callable, NoReturn, Optional, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from quaton_fab.errors import QuatonFabError
from quaton_fab.units import parse_length

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

#: Exit code of a user error (bad option value, missing file, …), as click uses for its own usage errors.
EXIT_USAGE = 2
#: Exit code after Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130

#: Training-configuration field names → the option a user types (so messages name what the user can change).
CONFIG_OPTIONS = {
    "level_range_rad": "--level-range", "level_phases_rad": "--level-phases", "pitch_m": "--pitch",
    "wavelength_m": "--wavelength", "spacing_m": "--spacing", "d_in_m": "--d-in", "d_out_m": "--d-out",
    "z_step_m": "--z-step", "z_step": "--z-step", "batch_size": "--batch-size", "train_samples": "--train-samples",
    "val_samples": "--val-samples", "test_samples": "--test-samples", "levels": "--levels", "layers": "--layers",
    "neurons": "--neurons", "oversample": "--oversample", "epochs": "--epochs", "lr": "--lr",
}


def q(value: object) -> str:
    """A user- or file-supplied value as rich text that is shown literally (markup escaped)."""
    return escape(str(value))


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print one error line (shown literally: no rich markup is interpreted in ``message``) and exit."""
    text = " ".join(message.split("\n")[0].split()) if message else "error"
    err_console.print(f"[bold red]error:[/] {q(text)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def option_names(message: str) -> str:
    """Replace internal configuration field names in a ConfigError message by the CLI options."""
    return re.sub(r"(?<!-)\b(" + "|".join(sorted(CONFIG_OPTIONS, key=len, reverse=True)) + r")\b",
                  lambda m: CONFIG_OPTIONS[m.group(1)], message)


def os_error_text(exc: OSError) -> str:
    """One line for an operating-system error: the path it concerns and the system's reason."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    path = exc.filename
    if path is None:
        return reason
    return f"{os.fsdecode(path)}: {reason}"


def user_errors(func: F) -> F:
    """Turn the library's user errors (QuatonFabError) and OS errors into one line + exit 2.

    Any other exception is a bug and propagates with its traceback.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except QuatonFabError as exc:
            from quaton_fab.training.config import ConfigError

            message = str(exc) or type(exc).__name__
            fail(option_names(message) if isinstance(exc, ConfigError) else message)
        except OSError as exc:
            fail(os_error_text(exc))
        except KeyboardInterrupt:
            fail("interrupted", EXIT_INTERRUPTED)

    return wrapper  # type: ignore[return-value]


def command_line() -> Optional[str]:
    """The command line that started this process, when it is this app (None when called from Python)."""
    if os.path.basename(sys.argv[0]) not in ("quaton-fab", "__main__.py"):
        return None
    return shlex.join(["quaton-fab", *sys.argv[1:]])


def length(text: Optional[str], name: str, *, allow_zero: bool = False) -> Optional[float]:
    """Parse an optional length option (metres)."""
    if text is None:
        return None
    return parse_length(text, name=name, allow_zero=allow_zero)


def parse_oversample(text: Optional[str]) -> int | str | None:
    """``auto`` or a positive integer for --oversample (None when not given)."""
    if text is None or text.strip().lower() == "auto":
        return None if text is None else "auto"
    try:
        value = int(text)
    except ValueError:
        fail(f"--oversample must be 'auto' or a positive integer, got {text!r}")
    if value < 1:
        fail(f"--oversample must be 'auto' or a positive integer, got {text!r}")
    return value
