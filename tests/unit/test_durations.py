"""The one duration formatter the log, the cockpit and the report share."""

import math

from cockpit.durations import format_duration


def test_short_form_drops_seconds_once_hours_show():
    assert format_duration(42) == "42s"
    assert format_duration(185) == "3m05s"
    assert format_duration(3725) == "1h02m"


def test_long_form_keeps_seconds_and_spaces_the_parts():
    assert format_duration(42, long=True) == "42s"
    assert format_duration(185, long=True) == "3m 05s"
    assert format_duration(3725, long=True) == "1h 02m 05s"


def test_unknown_inputs_get_the_placeholder():
    for value in (None, -1.0, math.inf, math.nan):
        assert format_duration(value) == "--"
    assert format_duration(None, unknown="unknown") == "unknown"
