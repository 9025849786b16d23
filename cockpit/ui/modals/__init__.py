"""Modal screens of the cockpit: one per module."""

from cockpit.ui.modals.baseline_picker import BaselinePickerScreen
from cockpit.ui.modals.confirm import ConfirmScreen
from cockpit.ui.modals.error import ErrorScreen
from cockpit.ui.modals.help import HelpScreen
from cockpit.ui.modals.nan import NaNScreen
from cockpit.ui.modals.set_lr import SetLRScreen
from cockpit.ui.modals.startup_failed import StartupFailedScreen

__all__ = ["BaselinePickerScreen", "ConfirmScreen", "ErrorScreen", "HelpScreen", "NaNScreen", "SetLRScreen",
           "StartupFailedScreen"]
