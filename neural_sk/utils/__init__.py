"""Small shared helpers: devices, seeding, input validation."""

from .device import resolve_device, seed_everything
from .validation import check_index, check_reports, check_study_frame

__all__ = ["resolve_device", "seed_everything", "check_study_frame", "check_reports", "check_index"]
