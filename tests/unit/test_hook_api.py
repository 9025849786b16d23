"""The Hook base declares every callback the engine makes: no probing for optional methods."""

from __future__ import annotations

import ast
from pathlib import Path

import cockpit
from cockpit.engine.hooks import Hook

ENGINE = Path(cockpit.__file__).parent / "engine"


def hook_calls() -> set[str]:
    """Every method name passed to ``call_hooks`` anywhere in the engine."""
    names = set()
    for path in ENGINE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "call_hooks" and node.args:
                first = node.args[0]
                assert isinstance(first, ast.Constant), f"{path.name}: call_hooks with a computed name"
                names.add(first.value)
    return names


def test_every_callback_the_engine_makes_is_declared_on_hook():
    called = hook_calls()
    assert {"before_train", "before_step", "after_step", "after_eval", "on_oom", "on_probe"} <= called
    assert called <= {name for name in vars(Hook) if not name.startswith("_")}


def test_the_engine_never_probes_hooks_with_getattr():
    for path in ENGINE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            # getattr(hook, name, None) / hasattr(hook, name): a callback that may be missing.
            probing = isinstance(node, ast.Call) and (
                (getattr(node.func, "id", None) == "getattr" and len(node.args) == 3)
                or getattr(node.func, "id", None) == "hasattr"
            )
            if probing:
                target = node.args[0]
                assert not (isinstance(target, ast.Name) and target.id == "hook"), f"{path.name} probes a hook"
