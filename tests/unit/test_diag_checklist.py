"""The checklist state: every catalog rule, updated from events and pre-flight verdicts."""

from __future__ import annotations

from cockpit.diagnostics.catalog import ALL_RULES
from cockpit.diagnostics.checklist import Checklist
from cockpit.diagnostics.flags import CheckState, Flag, Verdict
from cockpit.engine.events import FlagRaised, Severity, event_from_dict


def flag(rule: str, severity: Severity = Severity.ERROR, evidence: str = "bad") -> Verdict:
    return Verdict.flagged(Flag(rule, rule.title(), severity, evidence, "cause", "do this"))


def test_starts_with_every_rule_not_checked():
    rows = Checklist().rows()
    assert [r.rule for r in rows] == [r.id for r in ALL_RULES]
    assert all(r.state == CheckState.NOT_CHECKED and r.severity is None for r in rows)
    assert Checklist().counts()["not_checked"] == len(ALL_RULES)
    assert {r.stage for r in Checklist().rows("live")} == {"live"}


def test_apply_flag_then_clear():
    checklist = Checklist()
    row = checklist.apply(flag("nonfinite_loss", evidence="loss_box_reg=nan at 57").to_event(57))
    assert row.state == CheckState.FLAGGED and row.severity == Severity.ERROR
    assert row.iter == 57 and row.fix == "do this" and row.title == "Nonfinite_Loss"
    assert checklist.flagged()[0].rule == "nonfinite_loss"
    ok = checklist.apply(Verdict.ok("nonfinite_loss", "Loss is NaN / Inf", "finite again").to_event(120))
    assert ok.state == CheckState.OK and ok.severity is None and ok.fix == "" and ok.evidence == "finite again"
    assert checklist.flagged() == []


def test_apply_event_read_back_from_json():
    event = flag("flat_loss", Severity.WARNING).to_event(30)
    again = event_from_dict(event.to_dict())
    row = Checklist().apply(again)
    assert row.state == CheckState.FLAGGED and row.severity == Severity.WARNING


def test_unknown_rule_is_appended():
    checklist = Checklist()
    checklist.apply(FlagRaised(rule="custom", title="Custom", status="FLAGGED", severity=Severity.INFO))
    assert checklist.rows()[-1].rule == "custom"
    assert checklist.counts()["info"] == 1


def test_preflight_merge_keeps_the_worst_split():
    checklist = Checklist()
    checklist.apply_preflight([
        ("train", Verdict.ok("label_zero", "Label 0", "fine")),
        ("val", flag("label_zero", Severity.ERROR, "3 boxes")),
        ("train", flag("class_mismatch", Severity.WARNING, "unused b")),
        ("val", flag("class_mismatch", Severity.INFO, "unused b in val")),
    ])
    zero = checklist.get("label_zero")
    assert zero.state == CheckState.FLAGGED and zero.split == "val" and zero.evidence == "3 boxes"
    mismatch = checklist.get("class_mismatch")
    assert mismatch.severity == Severity.WARNING and mismatch.split == "train"
    assert [r.rule for r in checklist.flagged()] == ["label_zero", "class_mismatch"]
    assert checklist.get("label_zero").to_dict()["severity"] == "error"
