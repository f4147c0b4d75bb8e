"""How far a batch's judgements agree with people's labels: ``report.html`` and a terminal summary.

Labels: a .csv, .tsv or .jsonl file with a ``video`` column (or ``file`` / ``path``; relative paths are
read from the labels file's folder; a bare file name matches a clip of that name), ``quality`` and
``authenticity`` MOS (0-100), and optionally ``categories`` (names of ``judge.result.CATEGORIES``,
separated by ``;`` or ``|``). Statistics come from ``judge.annotations.agreement``.
"""

from __future__ import annotations

import base64
import csv
import html
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from face_nerf.batch import BatchError
from judge.annotations.agreement import DIMENSIONS, Correlation, category_precision_recall, correlate
from judge.result import CATEGORIES, NO_DISTORTION

GROUP_COLUMNS = ("generator", "group")  # a manifest column that splits the statistics
WORST = 8  # disagreements shown with their strips


@dataclass(frozen=True)
class Label:
    quality: float
    authenticity: float
    categories: tuple[str, ...]


@dataclass(frozen=True)
class Report:
    text: str  # the terminal summary
    path: Path  # report.html
    correlations: dict[str, Correlation]  # by dimension, over every matched clip


def read_labels(path: str | Path) -> dict[str, Label]:
    """Labels by resolved path (and by bare file name when the file gave only a name).

    Raises:
        BatchError: unreadable file, missing columns, a score that is not a number in [0, 100], or an
            unknown category.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise BatchError(f"--labels {path}: cannot be read ({err.strerror}).") from None
    if path.suffix.lower() == ".jsonl":
        try:
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as err:
            raise BatchError(f"--labels {path}: a line is not JSON ({err.msg}).") from None
    else:
        rows = list(csv.DictReader(text.splitlines(), delimiter="\t" if path.suffix.lower() == ".tsv" else ","))
    column = next((c for c in ("video", "file", "path") if rows and all(c in r for r in rows)), None)
    if column is None or not all("quality" in r and "authenticity" in r for r in rows):
        raise BatchError(f"--labels {path}: needs columns video, quality and authenticity (and optionally categories).")
    labels = {}
    for number, row in enumerate(rows, 2):
        try:
            scores = [float(row[d]) for d in DIMENSIONS]
        except (TypeError, ValueError):
            raise BatchError(f"--labels {path}: row {number} has a score that is not a number.") from None
        if not all(0 <= s <= 100 for s in scores):
            raise BatchError(f"--labels {path}: row {number} has a score outside 0-100.")
        raw = row.get("categories") or ""
        categories = tuple(c.strip() for c in (raw if isinstance(raw, list) else raw.replace("|", ";").split(";"))
                           if c.strip())
        unknown = [c for c in categories if c not in CATEGORIES]
        if unknown:
            raise BatchError(f"--labels {path}: row {number} names unknown categories {unknown}; known: "
                             f"{', '.join(CATEGORIES)}.")
        name = str(row[column])
        key = name if "/" not in name and "\\" not in name else str((path.parent / name).resolve())
        labels[key] = Label(*scores, categories)
    return labels


def matched(rows_path: Path, labels: dict[str, Label]) -> list[tuple[dict, Label]]:
    """(row, label) of every judged clip (no error) that has a label, by path or bare file name."""
    pairs = []
    for line in rows_path.read_text().splitlines():
        row = json.loads(line)
        if row.get("error"):
            continue
        label = labels.get(str(Path(row["path"]).resolve())) or labels.get(Path(row["path"]).name)
        if label is not None:
            pairs.append((row, label))
    return pairs


def agreement_report(rows_path: Path, labels: dict[str, Label], out: Path) -> Report:
    """Write ``out/report.html`` and return it with the terminal summary.

    Raises:
        BatchError: fewer than 3 judged clips have labels.
    """
    pairs = matched(rows_path, labels)
    if len(pairs) < 3:
        raise BatchError(f"Only {len(pairs)} judged clips have labels: need at least 3 to correlate. Check that the "
                         "labels' video column names the clips (a path or a file name).")
    lines = [f"Agreement with the labels over {len(pairs)} clips (95% bootstrap intervals):"]
    overall = {d: correlate(_scores(pairs, d, True), _scores(pairs, d, False)) for d in DIMENSIONS}
    for d, c in overall.items():
        lines.append(f"  {d:<13} {_correlation_line(c)}")
    groups = _groups(pairs)
    for column, members in groups.items():
        lines.append(f"By {column}:")
        for name, group in members.items():
            if len(group) < 3:
                lines.append(f"  {name}: {len(group)} clips, too few to correlate")
                continue
            for d in DIMENSIONS:
                lines.append(f"  {name} {d}: {_correlation_line(correlate(_scores(group, d, True), _scores(group, d, False)))}")
    labelled = [(r, l) for r, l in pairs if l.categories]
    per_category, confusion = ({}, None)
    if labelled:
        per_category, confusion = _categories(labelled)
        lines.append(f"Categories over {len(labelled)} clips with labelled categories (precision / recall / F1, "
                     "clips labelled):")
        for c, (p, r, f1, n) in per_category.items():
            lines.append(f"  {c:<26} {_num(p)} / {_num(r)} / {_num(f1)}  ({n})")
    worst = sorted(pairs, key=lambda p: -_disagreement(*p))[:WORST]
    lines.append("Worst disagreements (judge vs people, quality / authenticity):")
    for row, label in worst:
        lines.append(f"  {Path(row['path']).name}: {row['quality_mos']:.0f} vs {label.quality:.0f} / "
                     f"{row['authenticity_mos']:.0f} vs {label.authenticity:.0f}")
    path = out / "report.html"
    tmp = path.with_name(".report.html.tmp")
    tmp.write_text(_html(pairs, overall, groups, per_category, confusion, worst, out))
    tmp.replace(path)
    return Report("\n".join(lines), path, overall)


def _scores(pairs, dimension: str, judge: bool) -> np.ndarray:
    return np.array([row[f"{dimension}_mos"] if judge else getattr(label, dimension) for row, label in pairs], float)


def _correlation_line(c: Correlation) -> str:
    return (f"SRCC {c.srcc:.3f} [{c.srcc_ci[0]:.2f}, {c.srcc_ci[1]:.2f}]  PLCC {c.plcc:.3f} [{c.plcc_ci[0]:.2f}, "
            f"{c.plcc_ci[1]:.2f}]  KRCC {c.krcc:.3f} [{c.krcc_ci[0]:.2f}, {c.krcc_ci[1]:.2f}]  (n={c.n})")


def _num(value: float) -> str:
    return "  - " if value != value else f"{value:.2f}"


def _groups(pairs) -> dict[str, dict[str, list]]:
    out = {}
    for column in GROUP_COLUMNS:
        if any(column in row for row, _ in pairs):
            members: dict[str, list] = {}
            for row, label in pairs:
                members.setdefault(str(row.get(column, "(none)")), []).append((row, label))
            out[column] = dict(sorted(members.items()))
    return out


def _categories(pairs) -> tuple[dict, np.ndarray]:
    """Per category (precision, recall, F1, clips labelled with it), and the confusion matrix [9, 9] of the
    judge's top category (columns) against the first labelled one (rows)."""
    names = [Path(row["path"]).name + str(i) for i, (row, _) in enumerate(pairs)]
    judge_found = {n: set(row["categories"]) - {NO_DISTORTION} for n, (row, _) in zip(names, pairs)}
    people_found = {n: set(label.categories) - {NO_DISTORTION} for n, (_, label) in zip(names, pairs)}
    out = {}
    for c, (p, r, n) in category_precision_recall(judge_found, people_found).items():
        f1 = 2 * p * r / (p + r) if p == p and r == r and p + r > 0 else float("nan")
        out[c] = (p, r, f1, n)
    confusion = np.zeros((len(CATEGORIES), len(CATEGORIES)), int)
    for row, label in pairs:
        confusion[CATEGORIES.index(label.categories[0]), CATEGORIES.index(row["top_category"])] += 1
    return out, confusion


def _disagreement(row: dict, label: Label) -> float:
    return abs(row["quality_mos"] - label.quality) + abs(row["authenticity_mos"] - label.authenticity)


def _html(pairs, overall, groups, per_category, confusion, worst, out: Path) -> str:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    figure = make_subplots(rows=1, cols=2, subplot_titles=[d.capitalize() for d in DIMENSIONS])
    for k, d in enumerate(DIMENSIONS, 1):
        figure.add_trace(go.Scatter(x=_scores(pairs, d, False), y=_scores(pairs, d, True), mode="markers",
                                    text=[Path(r["path"]).name for r, _ in pairs], name=d,
                                    hovertemplate="%{text}<br>people %{x:.0f}, judge %{y:.0f}<extra></extra>"),
                         row=1, col=k)
        figure.add_trace(go.Scatter(x=[0, 100], y=[0, 100], mode="lines", line={"dash": "dot", "color": "grey"},
                                    showlegend=False, hoverinfo="skip"), row=1, col=k)
        figure.update_xaxes(title_text="people's MOS", range=[0, 100], row=1, col=k)
        figure.update_yaxes(title_text="judge's MOS", range=[0, 100], row=1, col=k)
    figure.update_layout(height=420, showlegend=False, margin={"t": 40})
    esc = html.escape
    parts = ["<!doctype html><meta charset='utf-8'><title>FaceLab 3D: judge against labels</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child{text-align:left}</style>",
             f"<h1>Judge against labels: {len(pairs)} clips</h1>",
             "<h2>Correlation (95% bootstrap intervals)</h2>", _correlation_table(overall)]
    for column, members in groups.items():
        parts.append(f"<h2>By {esc(column)}</h2>")
        parts.append(_correlation_table({f"{name} {d}": correlate(_scores(g, d, True), _scores(g, d, False))
                                         for name, g in members.items() if len(g) >= 3 for d in DIMENSIONS}))
    parts.append(figure.to_html(full_html=False, include_plotlyjs=True))  # inline: the report works offline
    if per_category:
        parts.append("<h2>Categories</h2><table><tr><th>category</th><th>precision</th><th>recall</th><th>F1</th>"
                     "<th>clips labelled</th></tr>")
        parts += [f"<tr><td>{esc(c)}</td><td>{_num(p)}</td><td>{_num(r)}</td><td>{_num(f)}</td><td>{n}</td></tr>"
                  for c, (p, r, f, n) in per_category.items()]
        parts.append("</table><h3>Confusion: labelled (rows) against the judge's top category (columns)</h3><table><tr><th></th>"
                     + "".join(f"<th>{esc(c)}</th>" for c in CATEGORIES) + "</tr>")
        parts += ["<tr><td>" + esc(c) + "</td>" + "".join(f"<td>{v or ''}</td>" for v in confusion[i]) + "</tr>"
                  for i, c in enumerate(CATEGORIES)]
        parts.append("</table>")
    parts.append("<h2>Worst disagreements</h2><table><tr><th>clip</th><th>quality: judge / people</th>"
                 "<th>authenticity: judge / people</th><th>judge's top category</th><th>strip and distortion map</th></tr>")
    for row, label in worst:
        strip = out / row["strip"] if row.get("strip") else None
        image = (f"<img src='data:image/jpeg;base64,{base64.b64encode(strip.read_bytes()).decode()}'>"
                 if strip is not None and strip.is_file() else "")
        parts.append(f"<tr><td>{esc(Path(row['path']).name)}</td><td>{row['quality_mos']:.0f} / {label.quality:.0f}</td>"
                     f"<td>{row['authenticity_mos']:.0f} / {label.authenticity:.0f}</td><td>{esc(row['top_category'])}"
                     f"</td><td>{image}</td></tr>")
    parts.append("</table>")
    return "\n".join(parts)


def _correlation_table(rows: dict[str, Correlation]) -> str:
    head = "<table><tr><th></th><th>n</th><th>SRCC</th><th>PLCC</th><th>KRCC</th></tr>"
    cell = lambda v, ci: f"<td>{v:.3f} [{ci[0]:.2f}, {ci[1]:.2f}]</td>"
    return head + "".join(f"<tr><td>{html.escape(name)}</td><td>{c.n}</td>{cell(c.srcc, c.srcc_ci)}"
                          f"{cell(c.plcc, c.plcc_ci)}{cell(c.krcc, c.krcc_ci)}</tr>" for name, c in rows.items()) + "</table>"
