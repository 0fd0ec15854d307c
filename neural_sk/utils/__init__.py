"""The floor of the package: devices, seeding, input validation (imports no estimator)."""

from .device import resolve_device, seed_everything
from .validation import check_index, check_reports, check_study_frame

__all__ = ["resolve_device", "seed_everything", "check_study_frame", "check_reports", "check_index"]
