"""Judges of 3D face turntables: quality and authenticity scores, distortions, heatmaps."""
