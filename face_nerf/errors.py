"""Errors that reach the user: each names the problem and how to fix it."""


class FaceLabError(Exception):
    """Base class for problems a user can act on (bad photo, no face, bad option)."""


class PhotoError(FaceLabError, ValueError):
    """The file is not a usable photo (unreadable, too large, too small, odd mode)."""


class NoFaceError(FaceLabError):
    """The face landmarker found no face in the photo."""
