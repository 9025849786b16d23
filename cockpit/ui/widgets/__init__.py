"""Widgets of the cockpit: one public widget per module."""
