"""Training data for the LMM judge: a benchmark-style folder or the spot-check export.

Benchmark-style folder (the published benchmark's kinds of label): ``labels.json`` or ``labels.csv``
beside the videos.

    labels.json  {"items": [{"video": "videos/a.mp4", "quality": 62.5, "authenticity": 40.0,
                             "distortions": ["Eye", "Mouth"], "clicks": [[x, y], ...],
                             "strip_size": [512, 1536]}, ...]}
    labels.csv   video,quality,authenticity,distortions,clicks,strip_height,strip_width
                 (distortions separated by ";", clicks as JSON)

MOS are 0-100; ``clicks`` are pixel positions of distorted spots on the 3-view still (-45, 0, +45
degrees side by side) of size ``strip_size`` (height, width). Spot-check export: the JSON of
``python -m judge.annotations export`` (format facelab-annotations/1): MOS per item, a category counts
when at least half the annotators marked it, clicks are on the app's strip (analysis frames, at most
256 px per view).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from judge.analytic import analysis_size
from judge.lmm.checkpoint import LMMError
from judge.result import CATEGORIES, NO_DISTORTION

EXPORT_FORMAT = "facelab-annotations/1"


@dataclass
class Sample:
    """One labelled turntable.

    Attributes:
        name: for messages and reports.
        video: path of the video (or frame folder).
        quality, authenticity: MOS in [0, 100].
        categories: distortion categories (``["No Distortion"]`` when none).
        clicks: [[x, y], ...] on the 3-view strip; empty when not annotated.
        strip_size: (height, width) of the strip the clicks are on; None: the app's strip of the video.
    """

    name: str
    video: Path
    quality: float
    authenticity: float
    categories: list[str]
    clicks: list[list[float]] = field(default_factory=list)
    strip_size: tuple[int, int] | None = None


def read_dataset(path: str | Path) -> list[Sample]:
    """Samples from a benchmark-style folder, its labels file, or a spot-check export (JSON)."""
    path = Path(path)
    if path.is_dir():
        for name in ("labels.json", "labels.csv"):
            if (path / name).exists():
                return read_dataset(path / name)
        raise LMMError(f"{path} has no labels.json or labels.csv; see judge/lmm/data.py for the layout.")
    if not path.exists():
        raise LMMError(f"{path} does not exist; give a benchmark-style folder or a spot-check export.")
    if path.suffix == ".csv":
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
        items = [_csv_item(row) for row in rows]
    else:
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise LMMError(f"{path} is not JSON ({err}).") from err
        items = data.get("items") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise LMMError(f"{path} must hold a list of items, or {{\"items\": [...]}}; see judge/lmm/data.py.")
        if isinstance(data, dict) and data.get("format") == EXPORT_FORMAT:
            items = [_export_item(item, f"{path.name} item {i + 1}") for i, item in enumerate(items)]
    samples = [_sample(item, path.parent, f"{path.name} item {i + 1}") for i, item in enumerate(items)]
    if not samples:
        raise LMMError(f"{path} lists no items.")
    return samples


def _csv_item(row: dict) -> dict:
    item = {"video": row.get("video"), "quality": row.get("quality"), "authenticity": row.get("authenticity"),
            "distortions": row.get("distortions") or "", "clicks": row.get("clicks") or "[]"}
    if row.get("strip_height") and row.get("strip_width"):
        item["strip_size"] = [row["strip_height"], row["strip_width"]]
    return item


def _export_item(item: dict, where: str) -> dict:
    try:
        raters = max(int(item.get("annotators", 1)), 1)
        majority = [c for c, n in item.get("categories", {}).items() if 2 * n >= raters]
        return {"video": item["path"], "name": item.get("name"), "quality": item["mos_quality"],
                "authenticity": item["mos_authenticity"], "distortions": majority, "clicks": item.get("clicks", [])}
    except (KeyError, TypeError, AttributeError, ValueError) as err:
        raise LMMError(f"{where}: not an item of a spot-check export ({err!r}); export again with "
                       f"python -m judge.annotations export ratings.json.") from err


def _sample(item: dict, root: Path, where: str) -> Sample:
    try:
        video = Path(item["video"])
        quality, authenticity = float(item["quality"]), float(item["authenticity"])
    except (KeyError, TypeError, ValueError) as err:
        raise LMMError(f"{where}: needs video, quality and authenticity ({err!r}).") from err
    categories = item.get("distortions") or []
    if isinstance(categories, str):  # "Eye;Mouth"
        categories = [c.strip() for c in categories.split(";") if c.strip()]
    clicks, size = _clicks(item.get("clicks"), where), item.get("strip_size")
    try:
        size = (int(size[0]), int(size[1])) if size is not None else None
    except (TypeError, ValueError, IndexError) as err:
        raise LMMError(f"{where}: strip_size must be [height, width]. Got {size!r}.") from err
    video = video if video.is_absolute() else root / video
    if not video.exists():
        raise LMMError(f"{where}: the video {video} does not exist.")
    for name, value in (("quality", quality), ("authenticity", authenticity)):
        if not 0 <= value <= 100:
            raise LMMError(f"{where}: {name} must lie in 0-100. Got {value}.")
    unknown = [c for c in categories if c not in CATEGORIES]
    if unknown:
        raise LMMError(f"{where}: unknown categories {unknown}; use the nine of the taxonomy: {', '.join(CATEGORIES)}.")
    if NO_DISTORTION in categories and len(set(categories)) > 1:
        raise LMMError(f"{where}: {NO_DISTORTION} together with {[c for c in categories if c != NO_DISTORTION]}; "
                       f"an item either has distortions or has none.")
    return Sample(item.get("name") or video.stem, video, quality, authenticity, list(categories) or [NO_DISTORTION],
                  clicks, size)


def _clicks(value, where: str) -> list[list[float]]:
    """[[x, y], ...] from a list or its JSON text."""
    try:
        clicks = json.loads(value) if isinstance(value, str) else (value or [])
        out = [[float(x), float(y)] for x, y in clicks]
    except (TypeError, ValueError) as err:
        raise LMMError(f"{where}: clicks must be [[x, y], ...] in pixels of the 3-view strip. Got {value!r}.") from err
    return out


def app_strip_size(frame_height: int, frame_width: int) -> tuple[int, int]:
    """(height, width) of the app's 3-view strip for frames of this size (analysis frames side by side)."""
    height, width = analysis_size(frame_height, frame_width)
    return height, 3 * width
