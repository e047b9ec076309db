"""Bad input to `peft_orthoreg`: subclasses of the shared `InputError` (exit 2 from `peft-orthoreg`).

They also derive from the built-in class a library caller may already catch (`ValueError`; `FileNotFoundError`
for a missing input, `FileExistsError` for an occupied output).

Example:
    >>> err = MissingInputError("tv: no task_vector.safetensors there")
    >>> isinstance(err, InputError), isinstance(err, FileNotFoundError)
    (True, True)
"""

from __future__ import annotations

from distill_ortho_merge.errors import InputError


class OrthoRegInputError(InputError):
    """An adapter, task vector, model or option `peft_orthoreg` refuses; the message is one line naming it."""


class MissingInputError(OrthoRegInputError, FileNotFoundError):
    """An input path that does not exist or holds none of the files expected there."""


class OutputExistsError(OrthoRegInputError, FileExistsError):
    """An output path that is already taken."""
