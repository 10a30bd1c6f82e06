"""One exception type for every input problem a user can cause.

The CLI turns a :class:`VigilError` into a single line on stderr (``vigil: error: ...``) and exit
code 2, so the message must name the file and say what is wrong with it.
"""


class VigilError(Exception):
    """Bad input, a bad checkpoint or an impossible request, explained in one line."""


class DiskError(VigilError):
    """A write that failed because of the place written to (full, read-only, no permission): it would
    fail for every later output too, so a job that goes on past a bad input stops for this one."""


class VigilWarning(UserWarning):
    """Something was read that is probably damaged but could still be used (a JPEG with broken data, a
    video shorter than its header says), or a fit that is less sure than asked (a threshold calibrated on
    too few videos). The command line prints each as one ``vigil: warning:`` line."""
