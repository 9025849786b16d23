"""A large JSON object parsed in steps: the same result and errors as ``json.loads``, and
other threads run while it is parsed."""

from __future__ import annotations

import json
import threading

import pytest

from cockpit.data import json_parse
from cockpit.data.coco_json import load_coco
from cockpit.engine.events import ProgressTask

DOCUMENTS = [
    "{}",
    " { } ",
    '{"images": []}',
    '{"images": [ ], "annotations" : [\n]\n}',
    '{"images": [{"id": 1, "file_name": "a.png", "width": 640}], "categories": [{"id": 3, "name": "cat"}]}',
    '{"a": [1, -2, 3.5, 1e-3, -0.0, 12345678901234567890], "b": [true, false, null], "c": "x"}',
    '{"nested": [[1, [2, []]], {"k": [{"deep": [1]}]}], "info": {"year": 2017, "list": [1, 2]}}',
    '{"text": ["caf\\u00e9", "\\ud83d\\ude00", "tab\\tnew\\nline", "quote \\" slash \\\\"]}',
    '{"dup": [1], "dup": [2]}',
    '\t\r\n{"spaces"\t:\r\n[ 1 ,\n2 ] ,"x":1}\n\n',
    "[1, 2, 3]",  # not an object: json.loads takes it whole
    '"just a string"',
]

MALFORMED = [
    '{"a": [1, 2,]}',
    '{"a": [1, 2}',
    '{"a" 1}',
    '{"a": 1} extra',
    '{"a": [1, 2',
    '{"a": 1,}',
    "{1: 2}",
    "",
]


@pytest.fixture
def in_steps(monkeypatch):
    """As in the cockpit's process: large documents are walked in steps."""
    monkeypatch.setattr(json_parse, "_in_steps", False)
    json_parse.parse_in_steps()


@pytest.fixture
def stepwise(in_steps, monkeypatch):
    """Every document goes through the element-by-element walk, however short."""
    monkeypatch.setattr(json_parse, "STEPWISE_FROM", 0)


def test_outside_the_cockpit_a_large_document_is_parsed_in_one_call(monkeypatch) -> None:
    monkeypatch.setattr(json_parse, "_in_steps", False)
    text = big_document(60_000)
    assert len(text) >= json_parse.STEPWISE_FROM and not json_parse.stepwise(text)
    seen = []
    assert json_parse.loads(text, lambda done, total: seen.append(done)) == json.loads(text)
    assert seen == []
    json_parse.parse_in_steps()
    assert json_parse.stepwise(text)


@pytest.mark.parametrize("text", DOCUMENTS)
def test_the_result_is_what_json_loads_gives(stepwise, text: str) -> None:
    assert json_parse.loads(text) == json.loads(text)
    if text.strip().startswith("{"):
        # Walked, not handed to json.loads by the fallback.
        assert json_parse._walk_object(text, None) == json.loads(text)


def test_objects_in_arrays_share_their_key_strings_as_json_loads_makes_them(stepwise) -> None:
    # A million annotations with seven keys each: one string per key, not seven million.
    text = json.dumps({"annotations": [{"image_id": i, "bbox": [i, i, 1, 1]} for i in range(3)],
                       "images": [{"image_id": 9}]})
    walked = json_parse._walk_object(text, None)
    first, second, third = walked["annotations"]
    image = walked["images"][0]
    for key in ("image_id", "bbox"):
        [a] = [k for k in first if k == key]
        [b] = [k for k in second if k == key]
        [c] = [k for k in third if k == key]
        assert a is b is c
    assert next(iter(image)) is next(iter(first))


@pytest.mark.parametrize("text", MALFORMED)
def test_a_malformed_document_fails_with_json_loads_own_message(stepwise, text: str) -> None:
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(text)
    with pytest.raises(json.JSONDecodeError) as got:
        json_parse.loads(text)
    assert str(got.value) == str(expected.value)


def test_bytes_decode_as_json_loads_detects_them() -> None:
    document = {"name": "café ☕"}
    for raw in (json.dumps(document, ensure_ascii=False).encode("utf-8"),
                b"\xef\xbb\xbf" + json.dumps(document).encode("utf-8"),
                json.dumps(document, ensure_ascii=False).encode("utf-16")):
        assert json_parse.loads(json_parse.decode(raw)) == json.loads(raw) == document


def big_document(n: int) -> str:
    return json.dumps({"images": [{"id": i, "file_name": f"{i}.png"} for i in range(n)], "categories": []})


def test_progress_counts_characters_up_to_the_whole_document(stepwise) -> None:
    text = big_document(5_000)
    seen: list[tuple[int, int]] = []
    json_parse.loads(text, lambda done, total: seen.append((done, total)))
    assert len(seen) >= 5_000 // json_parse._REPORT_EVERY
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert {total for _, total in seen} == {len(text)}
    assert seen[-1] == (len(text), len(text))


def test_other_threads_run_while_a_large_document_is_parsed(in_steps) -> None:
    # json.loads holds the GIL for the whole parse: a thread counting meanwhile could not
    # move between two of the parse's progress reports.
    text = big_document(300_000)
    assert len(text) >= json_parse.STEPWISE_FROM
    counter = [0]
    snapshots: list[int] = []
    result: dict = {}

    def parse() -> None:
        result["value"] = json_parse.loads(text, lambda done, total: snapshots.append(counter[0]))

    worker = threading.Thread(target=parse)
    worker.start()
    while worker.is_alive():
        counter[0] += 1
    worker.join()
    assert result["value"] == json.loads(text)
    mid_parse = snapshots[:-1]
    assert len(mid_parse) >= 100
    assert len(set(mid_parse)) > 1, "the counting thread never ran during the parse"


def test_load_coco_reports_the_parse_of_a_large_file(in_steps, tmp_path, monkeypatch) -> None:
    images = [{"id": i, "file_name": f"{i}.png", "width": 64, "height": 48} for i in range(1, 8_001)]
    annotations = [
        {"id": i, "image_id": i, "category_id": 1, "bbox": [1, 2, 10, 20], "area": 200, "iscrowd": 0}
        for i in range(1, 8_001)
    ]
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "a"}]}))
    assert path.stat().st_size >= json_parse.STEPWISE_FROM
    walked: list[tuple[int, int]] = []
    real_loads = json_parse.loads

    def spying_loads(text, progress=None):
        return real_loads(text, lambda done, total: (walked.append((done, total)), progress(done, total)))

    monkeypatch.setattr(json_parse, "loads", spying_loads)
    events = []
    coco = load_coco(path, events.append)
    # The walk reported its way through the file (the meter passes on one report a quarter second).
    assert any(0 < done < total for done, total in walked)
    parsed = [e for e in events if e.detail == "bytes of big.json parsed"]
    assert parsed and all(e.task is ProgressTask.ANNOTATIONS for e in parsed)
    assert parsed[-1].done == parsed[-1].total == path.stat().st_size
    assert len(coco.imgs) == 8_000 and coco.anns[8_000]["bbox"] == [1, 2, 10, 20]
    assert coco.imgToAnns[5][0]["id"] == 5
