"""A RunWarning's category is an enum in memory and its text in events.jsonl."""

from __future__ import annotations

import json

from cockpit.engine.events import RunWarning, WarningCategory, event_from_dict


def test_a_category_written_as_text_comes_back_as_the_enum():
    line = json.dumps(RunWarning("skipped sample 3", iter=3, category=WarningCategory.SKIPPED_SAMPLE, time=1.0).to_dict())
    assert json.loads(line)["category"] == "skipped_sample"
    event = event_from_dict(json.loads(line))
    assert event.category is WarningCategory.SKIPPED_SAMPLE
    assert event == RunWarning("skipped sample 3", iter=3, category=WarningCategory.SKIPPED_SAMPLE, time=1.0)


def test_a_category_this_version_does_not_know_is_still_a_warning():
    event = event_from_dict({"kind": "warning", "message": "from a newer writer", "iter": 9, "category": "gpu_throttled", "time": 2.0})
    assert event.category is WarningCategory.GENERAL
    assert event.message == "from a newer writer" and event.iter == 9


def test_the_default_category_is_general():
    assert RunWarning("something odd").category is WarningCategory.GENERAL
