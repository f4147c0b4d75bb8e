"""Judges of 3D face turntables: quality and authenticity scores, distortions, heatmaps.

Like ``face_nerf`` (see its docstring), PyTorch's OpenMP threads sleep rather than spin while they
wait: set before any module of the package imports torch.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
