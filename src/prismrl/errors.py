"""Mistakes a user can fix, as one family: the CLI prints a `PrismError` as one line naming the
item and exits 2; any other exception is a bug and keeps its traceback.

Each class also derives from the built-in exception it refines, so `except ValueError` (or
KeyError, FileNotFoundError, ...) in code that calls prismrl keeps working.
"""


class PrismError(Exception):
    """A mistake the user can fix: an option, a file, a model or task name, a missing program."""


class ConfigError(PrismError, ValueError):
    """An option or a config value that cannot work (unknown name, out of range, wrong type)."""


class InputError(PrismError, ValueError):
    """A data file or folder that is malformed or holds nothing usable."""


class MissingFile(PrismError, FileNotFoundError):
    """A file or folder the command needs is not there."""


class OutputExists(PrismError, FileExistsError):
    """The output folder already holds something this command would overwrite."""


class UnknownName(PrismError, KeyError):
    """An environment, split or task id that does not exist."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""  # KeyError would print the message in quotes


class SetupError(PrismError, RuntimeError):
    """Something this machine lacks (a Java runtime, a package, a worker that will not start)."""


class TrainingDiverged(PrismError, FloatingPointError):
    """A non-finite loss or gradient: the run stops before the weights are spoiled."""


class ConfigWarning(UserWarning):
    """A config that runs but probably not as meant (say, the probe and SFT at other lengths)."""
