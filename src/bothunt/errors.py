"""One error root; the CLI turns every BothuntError into a one-line message and exit code 2."""

from __future__ import annotations


class BothuntError(Exception):
    """Base of every error bothunt reports to a user."""


class InputError(BothuntError):
    """A file that cannot be read as telemetry. Carries the location when one is known."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None) -> None:
        self.file = file
        self.line = line
        where = file if line is None else f"{file}:{line}"
        super().__init__(f"{where}: {message}" if file else message)


class UnknownFormatError(InputError):
    """No source recognised the file."""


class ConfigError(BothuntError):
    """A configuration file or option that cannot be used."""


class EngineError(BothuntError):
    """The chosen engine is not available or failed."""
