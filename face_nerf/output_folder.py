"""Where the command lines write: the target is checked before any work, written beside itself and
swapped in with renames, and nothing the tool did not write is ever replaced.

Every output folder carries a marker file, ``.facelab-output`` (JSON naming the tool that wrote it).
An existing folder may be replaced only when it is empty or carries the same tool's marker, and never
when it holds one of the run's inputs.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator

from face_nerf.errors import FaceLabError

MARKER = ".facelab-output"  # JSON {"tool": ..., "format": 1} in every folder written by staged_folder
PathLike = str | os.PathLike


class OutputError(FaceLabError, ValueError):
    """An output path that cannot be written without harm; the message names the path and the fix."""


def check_output_folder(out_dir: PathLike, tool: str, inputs: Iterable[PathLike] = ()) -> Path:
    """Refuse an output folder that cannot be written, or whose replacement would destroy anything
    ``tool`` did not write. Cheap: call it before any work, so a bad ``--out`` fails at once.

    Args:
        out_dir: the folder to write (it may not exist yet).
        tool: the writer's name, e.g. ``"face_nerf reconstruct"``; it is what the marker records.
        inputs: paths the run reads (photo, video, data folder); ``out_dir`` may not be or contain them.

    Returns:
        ``out_dir`` as a Path.

    Raises:
        OutputError: ``out_dir`` is a file, holds other files or another tool's output, contains an
            input, or lies where nothing can be written.

    Example:
        >>> check_output_folder("runs/me", "face_nerf reconstruct", ["me.jpg"])  # doctest: +SKIP
        PosixPath('runs/me')
    """
    out_dir = Path(out_dir)
    _check_holds_no_input(out_dir, inputs)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir} is an existing file, not a folder; choose a new or empty folder for --out.")
    if out_dir.is_dir():
        _check_replaceable(out_dir, tool)
    _check_writable(out_dir.parent, out_dir)
    return out_dir


@contextmanager
def staged_folder(out_dir: PathLike, tool: str, inputs: Iterable[PathLike] = ()) -> Iterator[Path]:
    """Yield a temporary folder beside ``out_dir`` to write into; on success it gets ``tool``'s marker
    and replaces ``out_dir`` (renames only), on failure it is removed and ``out_dir`` is left as it was.

    Raises:
        OutputError: as ``check_output_folder``, checked again here (before and at the swap).
    """
    out_dir = check_output_folder(out_dir, tool, inputs)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    staging.chmod(0o755)
    try:
        yield staging
        (staging / MARKER).write_text(json.dumps({"tool": tool, "format": 1}))
        _replace_dir(staging, out_dir, tool)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def output_tool(folder: PathLike) -> str | None:
    """The tool named by ``folder``'s marker, or None (no marker, or one that cannot be read)."""
    try:
        return str(json.loads((Path(folder) / MARKER).read_text())["tool"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_output_file(target: PathLike, tool: str, inputs: Iterable[PathLike] = (),
                      may_replace: Callable[[Path], bool] | None = None) -> Path:
    """Refuse an output file that cannot be written, or whose replacement would destroy something.

    Args:
        target: the file to write (it may not exist yet).
        tool: the writer's name, for messages.
        inputs: files the run reads (e.g. a database); ``target`` may not be one of them.
        may_replace: says whether an existing file is a previous output of ``tool`` (which may be
            replaced). Empty files may always be replaced; without it, no other existing file may.

    Raises:
        OutputError: ``target`` is a folder, an input, an unrelated existing file, or lies where
            nothing can be written.
    """
    target = Path(target)
    for item in inputs:
        if _same_path(target, item):
            raise OutputError(f"{target} is {item}, which this command reads; writing there would destroy it. "
                              "Choose another file name.")
    if target.is_dir():
        raise OutputError(f"{target} is a folder; give a file name, e.g. {target / ('export' + target.suffix)}.")
    if target.exists() and target.stat().st_size and not (may_replace and may_replace(target)):
        raise OutputError(f"{target} already exists and was not written by {tool}; choose a new file name "
                          "(or move the file away first).")
    _check_writable(target.parent, target)
    return target


@contextmanager
def staged_file(target: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target`` to write; on success it replaces ``target`` in one
    rename (``os.replace``), on failure it is removed and ``target`` is left as it was."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(handle)
    staging = Path(name)
    staging.chmod(0o644)
    try:
        yield staging
        os.replace(staging, target)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise


def _check_holds_no_input(out_dir: Path, inputs: Iterable[PathLike]) -> None:
    out = out_dir.resolve()
    for item in inputs:
        path = Path(item).resolve()
        if path == out or out in path.parents:
            relation = "is" if path == out else "contains"
            raise OutputError(f"{out_dir} {relation} the input {item}; replacing it would delete it. Choose an "
                              f"output folder outside it, e.g. --out {out_dir.parent / (out_dir.name + '-out')}.")


def _check_replaceable(out_dir: Path, tool: str) -> None:
    """An existing folder may be replaced when it is empty or a previous output of ``tool``."""
    try:
        names = sorted(p.name for p in out_dir.iterdir())
    except OSError as err:
        raise OutputError(f"{out_dir} cannot be read ({err.strerror}); choose a new or empty folder "
                          "for --out.") from err
    if not names or output_tool(out_dir) == tool:
        return
    if (other := output_tool(out_dir)) is not None:
        raise OutputError(f"{out_dir} is an output of {other}, not of {tool}, and would be deleted; "
                          "choose a new or empty folder for --out.")
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    raise OutputError(f"{out_dir} already holds files that {tool} did not write ({shown}); they would be "
                      "deleted. Choose an empty or new folder for --out.")


def _check_writable(folder: Path, target: Path) -> None:
    """Try to create (and remove) a folder in ``folder``, or in its nearest existing ancestor when it
    does not exist yet; permission bits alone say nothing for root or on read-only mounts."""
    existing = next(p for p in (folder.absolute(), *folder.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise OutputError(f"{target} cannot be created: {existing} is a file, not a folder. Choose another path.")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".facelab-probe-", dir=existing))
    except OSError as err:
        raise OutputError(f"{target} cannot be written: nothing can be created in {existing} ({err.strerror}). "
                          "Choose a path in a folder you may write to.") from err


def _replace_dir(new: Path, target: Path, tool: str) -> None:
    """Put ``new`` in place of ``target`` (which may not exist) with renames only; ``target`` is checked
    again just before, in case something was put there during the run."""
    if not target.exists() and not target.is_symlink():
        os.rename(new, target)
        return
    _check_replaceable(target, tool)
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    os.rename(target, old)
    try:
        os.rename(new, target)
    except OSError:
        os.rename(old, target)
        raise
    if old.is_symlink():  # --out was a link: the folder it points to is left alone
        old.unlink()
    else:
        shutil.rmtree(old, ignore_errors=True)


def _same_path(a: PathLike, b: PathLike) -> bool:
    a, b = Path(a), Path(b)
    try:
        return a.samefile(b)
    except OSError:  # one does not exist
        return a.resolve() == b.resolve()
