"""Annotators' ratings: storage, agreement with the judge, recalibration (python -m judge.annotations)."""
