"""The built-in policies, one module each.  ``BUILTIN_POLICIES`` registers them."""

from __future__ import annotations

from ..base import Policy
from .best_fit import BestFit
from .consolidate import Consolidate
from .easy_backfill import EasyBackfill
from .fcfs import FCFS
from .first_fit import FirstFit
from .image_locality import ImageLocality
from .least_loaded import LeastLoaded
from .random_fit import RandomFit
from .round_robin import RoundRobin
from .sjf import ShortestJobFirst
from .worst_fit import WorstFit

__all__ = ["BUILTIN_POLICIES"]

BUILTIN_POLICIES: tuple[type[Policy], ...] = (
    FirstFit,
    BestFit,
    WorstFit,
    RoundRobin,
    RandomFit,
    LeastLoaded,
    ImageLocality,
    Consolidate,
    FCFS,
    ShortestJobFirst,
    EasyBackfill,
)
