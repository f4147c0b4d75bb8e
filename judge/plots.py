"""Plotly figures of a judgement: the two scores on the level scale, and the category probabilities."""

from __future__ import annotations

from judge.result import CATEGORIES, LEVELS, NO_DISTORTION, JudgeResult

LEVEL_COLOURS = ("#d7301f", "#fc8d59", "#fdcc8a", "#a1d99b", "#31a354")  # bad .. excellent
FONT = dict(size=16)  # readable on a projector


def score_figure(result: JudgeResult):
    """Quality and authenticity as bars over the five level bands (0-100), each labelled with its MOS
    and level word."""
    import plotly.graph_objects as go

    names = ["Quality", "Authenticity"]
    scores = [result.quality, result.authenticity]
    fig = go.Figure(go.Bar(
        x=[s.mos for s in scores], y=names, orientation="h", marker_color="#253494", width=0.45,
        text=[f"{s.mos:.0f} · {s.level}" for s in scores], textposition="outside", cliponaxis=False,
        hovertemplate="%{y}: %{x:.1f}/100<extra></extra>"))
    for i, (level, colour) in enumerate(zip(LEVELS, LEVEL_COLOURS)):
        fig.add_vrect(x0=20 * i, x1=20 * (i + 1), fillcolor=colour, opacity=0.25, line_width=0, layer="below",
                      annotation_text=level, annotation_position="top", annotation_font_size=11)
    fig.update_layout(xaxis=dict(range=[0, 100], title="opinion score (0-100)"), yaxis=dict(autorange="reversed", automargin=True),
                      height=230, margin=dict(l=10, r=30, t=40, b=40), font=FONT, showlegend=False,
                      title=dict(text=f"Judge: {result.backend}", font_size=15))
    return fig


def category_figure(result: JudgeResult):
    """Each category's probability as a bar, the ones the judge reports highlighted, with the 0.5 line."""
    import plotly.graph_objects as go

    found = {d.category for d in result.distortions}
    probabilities = [result.probabilities.get(c, 0.0) for c in CATEGORIES]
    colours = ["#31a354" if c == NO_DISTORTION and c in found else "#d7301f" if c in found else "#9e9e9e"
               for c in CATEGORIES]
    fig = go.Figure(go.Bar(x=probabilities, y=list(CATEGORIES), orientation="h", marker_color=colours,
                           text=[f"{p:.2f}" for p in probabilities], textposition="outside", cliponaxis=False,
                           hovertemplate="%{y}: %{x:.2f}<extra></extra>"))
    fig.add_vline(x=0.5, line_dash="dash", line_color="#444")
    fig.update_layout(xaxis=dict(range=[0, 1.05], title="probability"), yaxis=dict(autorange="reversed", automargin=True),
                      height=360, margin=dict(l=10, r=30, t=40, b=40), font=FONT, showlegend=False,
                      title=dict(text="Distortions (red: found)", font_size=15))
    return fig
