"""The floor of the package: devices, seeding, input validation (imports no estimator)."""

from .device import resolve_device, torch_seeded
from .validation import check_index, check_reports, check_seed, check_study_frame

__all__ = ["resolve_device", "torch_seeded", "check_seed", "check_study_frame", "check_reports",
           "check_index"]
