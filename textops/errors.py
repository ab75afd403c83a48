"""Expected failures, each carrying a one-line message for the person at the terminal.

The CLI prints these without a traceback and exits non-zero; anything else is a bug and keeps
its traceback.
"""


class TextopsError(Exception):
    """A failure the user can act on (bad input, unreachable server, missing dataset)."""


class InvalidDataError(TextopsError):
    """Rows were refused; ``problems`` lists every bad row with its line number."""

    def __init__(self, message: str, problems: list[str]) -> None:
        super().__init__(message)
        self.problems = problems

    def report(self, limit: int = 20) -> str:
        shown = "\n".join(f"  {p}" for p in self.problems[:limit])
        more = len(self.problems) - limit
        tail = f"\n  ... and {more} more" if more > 0 else ""
        return f"{self}\n{shown}{tail}"


class DatasetNotFoundError(TextopsError):
    """No dataset version with that id exists in the store."""


class CorruptDatasetError(TextopsError):
    """A stored dataset's content does not match the hash in its manifest."""


class StoreUnavailableError(TextopsError):
    """The dataset store (S3 server or directory) cannot be reached."""


class TrackingUnavailableError(TextopsError):
    """The MLflow tracking server cannot be reached."""


class RegistryError(TextopsError):
    """The model registry lacks what was asked for (model, alias, version)."""
