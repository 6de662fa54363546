"""Error types shared across stages, grouped by what the user has to fix."""


class InputError(RuntimeError):
    """The raw input is missing, empty, of an unknown layout or (strict mode) bad.

    Messages name the file, and the line and reason where there is one.
    """
