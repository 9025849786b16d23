"""Reading, overriding, validating and writing run configs.

Every failure becomes a :class:`ConfigError` whose message names the file, the line where
it can be found, and ``section.key`` -- never a pydantic or tomllib traceback.
"""

from __future__ import annotations

import difflib
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import tomli_w
from pydantic import BaseModel, ValidationError

from cockpit.config.schema import Config

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a config: where (``section.key``, file line) and what."""

    location: str
    message: str
    line: int | None = None
    origin: str = ""
    """Set when the value came from the command line (``--set optim.lr=abc``), not the file."""

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        loc = f"{self.location}: " if self.location else ""
        return f"{where}{loc}{self.message}"


class ConfigError(Exception):
    """The config cannot be used; ``problems`` lists every reason found."""

    def __init__(self, source: str, problems: Iterable[ConfigProblem]):
        self.source = source
        self.problems = list(problems)
        lines = [f"{p.origin or source}: {p}" for p in self.problems]
        super().__init__("\n".join(lines))


def _section_models() -> dict[str, type[BaseModel]]:
    return {name: field.annotation for name, field in Config.model_fields.items()}  # type: ignore[misc]


def _find_line(text: str, location: tuple[str | int, ...]) -> int | None:
    """Best-effort line of ``[section]`` / ``key =`` in the TOML text (tomllib keeps no positions)."""
    if not text or not location:
        return None
    section = str(location[0])
    key = str(location[1]) if len(location) > 1 else None
    lines = text.splitlines()
    in_section = False
    section_line = None
    for number, raw in enumerate(lines, start=1):
        stripped = raw.strip()
        header = re.match(r"^\[\s*([^\]]+?)\s*\]", stripped)
        if header:
            in_section = header.group(1) == section
            if in_section and section_line is None:
                section_line = number
            continue
        if key is None:
            continue
        dotted = re.match(rf"^{re.escape(section)}\s*\.\s*{re.escape(key)}\s*=", stripped)
        plain = re.match(rf"^\"?{re.escape(key)}\"?\s*=", stripped)
        if (in_section and plain) or dotted:
            return number
    return section_line


def _did_you_mean(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _problem(location: str, message: str, text: str, loc: tuple, overridden: dict[str, str]) -> ConfigProblem:
    """A problem at ``location``: from ``--set`` when the command line gave that value, else a file line."""
    origin = overridden.get(".".join(str(p) for p in loc[:2]), "")
    if origin:
        return ConfigProblem(location, message, None, origin)
    return ConfigProblem(location, message, _find_line(text, loc))


def _unknown_keys(data: dict[str, Any], text: str, overridden: dict[str, str] | None = None) -> list[ConfigProblem]:
    overridden = overridden or {}
    problems = []
    sections = _section_models()
    for section, value in data.items():
        if section not in sections:
            problems.append(
                ConfigProblem(
                    section,
                    f"unknown section [{section}]{_did_you_mean(section, sections)}",
                    _find_line(text, (section,)),
                )
            )
            continue
        if not isinstance(value, dict):
            problems.append(ConfigProblem(section, "must be a table ([section])", _find_line(text, (section,))))
            continue
        fields = sections[section].model_fields
        for key in value:
            if key not in fields:
                problems.append(
                    _problem(f"{section}.{key}", f"unknown key{_did_you_mean(key, fields)}", text, (section, key), overridden)
                )
    return problems


def _validation_problems(error: ValidationError, text: str, overridden: dict[str, str] | None = None) -> list[ConfigProblem]:
    overridden = overridden or {}
    problems = []
    for item in error.errors():
        loc = tuple(item["loc"])
        message = item["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        if "input" in item and item["type"] not in ("missing",) and not isinstance(item["input"], dict):
            message = f"{message} (got {item['input']!r})"
        problems.append(_problem(".".join(str(p) for p in loc), message, text, loc, overridden))
    return problems


def parse_override(item: str) -> tuple[str, Any]:
    """``section.key=value`` -> (``section.key``, value); the value is read as TOML, else as a string."""
    if "=" not in item:
        raise ConfigError("--set", [ConfigProblem(item, "expected section.key=value")])
    key, _, raw = item.partition("=")
    key = key.strip()
    if key.count(".") != 1:
        raise ConfigError("--set", [ConfigProblem(key, "expected section.key (one dot)")])
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    for item in overrides:
        key, value = parse_override(item)
        section, _, field = key.partition(".")
        data.setdefault(section, {})
        if not isinstance(data[section], dict):
            raise ConfigError("--set", [ConfigProblem(section, "is not a table")])
        data[section][field] = value
    return data


def config_from_dict(
    data: dict[str, Any], *, base_dir: Path, source: str = "<config>", text: str = "",
    overridden: dict[str, str] | None = None,
) -> Config:
    """Validate a parsed TOML document; raise :class:`ConfigError` listing every problem.

    ``overridden``: ``section.key -> "--set section.key=value"`` for values the command line
    set, so a problem with one is reported as coming from there, not from a file line."""
    problems = _unknown_keys(data, text, overridden)
    if problems:
        raise ConfigError(source, problems)
    try:
        config = Config.model_validate(data)
    except ValidationError as error:
        raise ConfigError(source, _validation_problems(error, text, overridden)) from None
    return config.with_base_dir(base_dir)


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> Config:
    """Read a TOML config file, apply ``--set`` overrides, validate."""
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise ConfigError(source, [ConfigProblem("", "file not found")])
    if path.is_dir():
        raise ConfigError(source, [ConfigProblem("", "is a folder, expected a .toml file")])
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(source, [ConfigProblem("", f"cannot read: {error}")]) from None
    return load_config_text(text, base_dir=path.resolve().parent, source=source, overrides=overrides)


def load_config_text(
    text: str, *, base_dir: Path, source: str = "<config>", overrides: Iterable[str] = ()
) -> Config:
    """Parse and validate TOML text (the config editor uses this with the edited buffer)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        line = getattr(error, "lineno", None)
        if line is None:
            found = re.search(r"line (\d+)", str(error))
            line = int(found.group(1)) if found else None
        message = str(error).split(" (at line")[0]
        raise ConfigError(source, [ConfigProblem("", f"invalid TOML: {message}", line)]) from None
    overrides = list(overrides)
    data = apply_overrides(data, overrides)
    overridden = {parse_override(item)[0]: f"--set {item.strip()}" for item in overrides}
    return config_from_dict(data, base_dir=base_dir, source=source, text=text, overridden=overridden)


def config_to_dict(config: Config) -> dict[str, Any]:
    """Plain dict of the resolved config; ``None`` fields are left out (TOML has no null)."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if v is not None}
        return value

    return strip(config.model_dump())


def dump_config(config: Config) -> str:
    """The resolved config as TOML text (every default filled in)."""
    return tomli_w.dumps(config_to_dict(config))


def diff_from_defaults(config: Config) -> dict[str, tuple[Any, Any]]:
    """``section.key -> (default, value)`` for every field that differs from the default."""
    default = Config().model_dump()
    current = config.model_dump()
    changes = {}
    for section, values in current.items():
        for key, value in values.items():
            if default[section].get(key) != value:
                changes[f"{section}.{key}"] = (default[section].get(key), value)
    return changes
