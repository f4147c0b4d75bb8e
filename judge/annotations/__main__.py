"""Command line: python -m judge.annotations {import,export,stats,calibrate} [--db data/annotations.sqlite]

  import FILE_OR_FOLDER   an export (.json/.csv), or a folder of videos to add to the queue (judged on the way)
  export FILE             .json (per item, the published benchmark's layout) or .csv (one row per rating);
                          a new file, or an earlier export (replaced atomically)
  stats                   agreement of the judge with the annotators
  calibrate               refit the judge's scores to the ratings (cross-validated); writes a new
                          data/calibrations/score-map-vN.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from face_nerf.errors import FaceLabError
from judge.annotations.store import DEFAULT_PATH, AnnotationError, AnnotationStore

VIDEO_SUFFIXES = (".mp4", ".webm", ".gif", ".mov", ".mkv", ".avi")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m judge.annotations", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default=str(DEFAULT_PATH), help=f"ratings database (default {DEFAULT_PATH})")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("import").add_argument("source", help="an export (.json/.csv) or a folder of videos")
    commands.add_parser("export").add_argument("target", help="a new .json or .csv file, or an earlier export")
    commands.add_parser("stats")
    calibrate = commands.add_parser("calibrate")
    calibrate.add_argument("--folds", type=int, default=5)
    calibrate.add_argument("--out", default="data/calibrations", help="folder of versioned score maps")
    return parser


def import_videos(store: AnnotationStore, folder: Path) -> int:
    """Judge each video of a folder and add it to the queue."""
    from judge.analytic import EmbeddedJudge
    from judge.frames import load_clip

    judge, added = EmbeddedJudge(), 0
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES):
        try:
            result = judge.judge(load_clip(path))
        except FaceLabError as err:
            print(f"skipped {path.name}: {err}", file=sys.stderr)
            continue
        store.add_item(path, "import", result.to_json(), strip_heatmap=result.strip_heatmap, strip=result.strip)
        added += 1
    return added


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from judge.annotations import report

    try:
        if args.command == "export":
            report.check_export_target(args.target, args.db)  # before the database is opened (or created)
        with AnnotationStore(args.db) as store:
            if args.command == "import":
                source = Path(args.source)
                if source.is_dir():
                    print(f"added {import_videos(store, source)} videos to the queue")
                else:
                    print(f"imported {report.import_file(store, source)} ratings; {store.count()} in {args.db}")
            elif args.command == "export":
                target = Path(args.target)
                count = report.export_json(store, target) if target.suffix.lower() == ".json" else report.export_csv(store, target)
                print(f"wrote {count} {'items' if target.suffix.lower() == '.json' else 'ratings'} to {target}")
            elif args.command == "stats":
                print(json.dumps(report.agreement_stats(store), indent=1, default=str))
            else:
                from judge.annotations.recalibrate import recalibrate
                import numpy as np

                items = [s for s in report.item_summaries(store) if s["judge"]]
                judge = {d: np.array([s["judge"][d]["mos"] for s in items]) for d in ("quality", "authenticity")}
                people = {d: np.array([s[f"mos_{d}"] for s in items]) for d in ("quality", "authenticity")}
                path, checks = recalibrate(judge, people, args.folds, args.out)
                for dim, check in checks.items():
                    print(f"{dim}: held-out SRCC/PLCC {check.before[0]:.3f}/{check.before[1]:.3f} -> "
                          f"{check.after[0]:.3f}/{check.after[1]:.3f} ({check.folds}-fold)")
                print(f"wrote {path} (the shipped calibration is unchanged; load it with "
                      f"EmbeddedJudge(score_map='{path}'))")
    except (AnnotationError, ValueError, FaceLabError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
