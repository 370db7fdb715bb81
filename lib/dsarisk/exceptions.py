"""The small exception hierarchy of dsarisk.

Every error a user can cause carries where it happened (file, module, field) so
the command line can print it as one line, never as a traceback.
"""

from __future__ import annotations

from pathlib import Path


class DsariskError(Exception):
    """Base class of every error dsarisk raises on purpose."""


class InputError(DsariskError):
    """A file or value given by the user is invalid.

    Parameters
    ----------
    message : str
        What is wrong, in words an analyst understands.
    file : str or Path, optional
        The file the value came from.
    module : str, optional
        The risk module concerned.
    field : str, optional
        The dotted path of the offending field inside the file.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        module: str | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.module = module
        self.field = field
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """Return ``file: module 'm': field 'f': message`` with the known parts."""
        parts = []
        if self.file:
            parts.append(self.file)
        if self.module:
            parts.append(f"module '{self.module}'")
        if self.field:
            parts.append(f"field '{self.field}'")
        parts.append(self.message)
        return ": ".join(parts)


class MethodologyError(InputError):
    """A methodology file is malformed or inconsistent."""


class ScoringError(InputError):
    """A value cannot be scored under the methodology (volume 0, unknown label, ...)."""


class OutputError(InputError):
    """The output folder given cannot or must not be written: it is a file, read-only, or
    holds the inputs, or a folder there that dsarisk did not write would be replaced."""


class TemplateError(DsariskError):
    """A report template is not what the report writer needs (a packaging error, not the user's).

    Parameters
    ----------
    message : str
        What is wrong.
    template : str
        The template's name.
    """

    def __init__(self, message: str, *, template: str) -> None:
        self.message = message
        self.template = template
        super().__init__(message)


class PipelineError(DsariskError):
    """A report run failed.

    Parameters
    ----------
    message : str
        What failed.
    module : str, optional
        The module whose notebook failed.
    cell : int, optional
        The execution count or index of the failing cell.
    notebook : Path, optional
        Where the executed notebook with the error was kept.
    """

    def __init__(
        self,
        message: str,
        *,
        module: str | None = None,
        cell: int | None = None,
        notebook: Path | None = None,
    ) -> None:
        self.message = message
        self.module = module
        self.cell = cell
        self.notebook = notebook
        super().__init__(message)
