"""Command-line options shared by the benchmarks that time one photo's turntable."""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def turntable_arguments(description: str) -> argparse.Namespace:
    """--size, --frames, --threads and --photo (default: the astronaut example)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--photo", default=str(ROOT / "assets" / "examples" / "astronaut.png"))
    return parser.parse_args()
