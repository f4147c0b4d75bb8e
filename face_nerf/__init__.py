"""Photo -> editable, relightable 3D face radiance field; render, relight, edit, export.

PyTorch's OpenMP worker threads spin while they wait for work unless told otherwise; on a busy 2-vCPU
host (a free Space) that made a 256 px turntable 14x slower (249 s against 18 s). Sleeping waiters
cost microseconds per parallel region instead. The policy is read once, when torch loads its OpenMP
runtime, so it is set here, before any module of the package imports torch; an explicit
$OMP_WAIT_POLICY wins.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
