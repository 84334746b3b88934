"""Fuzz tests, one per input format (issue 20, item 6): scene, save, playthrough, audio header,
request body. Each mutates a real, valid input (the lighthouse scene, a save of it, its
playthroughs, a WAV written by libsndfile, a chat request) with a fixed seed and a bounded
count, and checks the one contract: the reader either accepts the input, and then what it
returns is usable (finite numbers, encodable text, bounded sizes), or refuses it with its own
error type naming the problem. Any other exception is a bug.
"""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers import copy_scene

from xrstory.mind.server_request import MAX_BODY_BYTES, RequestError, body_length, parse_request
from xrstory.playthrough.script import PlaythroughSyntaxError, parse_playthrough
from xrstory.story import SaveError, SceneError, Story, load_scene, load_state
from xrstory.voice.audio import MAX_SECONDS, AudioError, read_audio

LIGHTHOUSE = Path("scenes/lighthouse")
JUNK_VALUES = ["nan", "inf", "-inf", "1e309", "-1", "0", "99999999999999999999", '"x"', "[]", "{}", "true",
               '"../../../etc/passwd.glb"', '"\\ud800"', "-0.0", '""']
JUNK_TEXT = ["\x00", "\xff", "\ud800", "é", "\u2028", "\n", " ", "=", "[", "]", '"', "'", "#", "..", "/", "\\"]


def _mutate_text(rng: random.Random, text: str) -> str:
    """One random edit: a number or string replaced by junk, a line dropped, doubled or cut."""
    lines = text.split("\n")
    i = rng.randrange(len(lines))
    op = rng.randrange(6)
    if op == 0 and "=" in lines[i]:
        key = lines[i].split("=", 1)[0]
        lines[i] = f"{key}= {rng.choice(JUNK_VALUES)}"
    elif op == 1:
        del lines[i]
    elif op == 2:
        lines.insert(i, lines[i])
    elif op == 3:
        cut = rng.randrange(len(lines[i]) + 1)
        lines[i] = lines[i][:cut] + rng.choice(JUNK_TEXT) + lines[i][cut:]
    elif op == 4:
        lines[i] = "".join(rng.choice(JUNK_TEXT) for _ in range(rng.randrange(1, 6)))
    else:
        return text[: rng.randrange(len(text))]
    return "\n".join(lines)


def _finite(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(_finite(v) for v in value)
    return True


def test_fuzz_scene(tmp_path):
    rng = random.Random(20)
    folder = tmp_path / "scene"
    copy_scene(LIGHTHOUSE, folder, ignore=shutil.ignore_patterns("playthroughs", "*.jsonl"))
    original = (folder / "scene.toml").read_text()
    accepted = refused = 0
    for _ in range(120):
        text = original
        for _ in range(rng.randrange(1, 4)):
            text = _mutate_text(rng, text)
        (folder / "scene.toml").write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            scene = load_scene(folder)
        except SceneError as exc:
            assert exc.issues and all(str(i.file).endswith("scene.toml") for i in exc.issues)
            refused += 1
            continue
        accepted += 1
        assert scene.characters and _finite(scene.model_dump())
        Story(scene)  # the story can start
    assert accepted > 5 and refused > 30, (accepted, refused)


def _save_text(scene) -> str:
    story = Story(scene)
    story.apply("light_stove", by="maren")
    story.note_utterance("player", "Hello there")
    return story.state.to_json()


def _mutate_json(rng: random.Random, data: object) -> object:
    """Replace one value somewhere in ``data`` by junk of another type or range."""
    junk = [float("nan"), float("inf"), -1e300, -1, 10**30, "", "no_such_id", "\udc00", None, True, [], {},
            [[[[[[[[]]]]]]]], {"x": 1},
            0.5, 12.0, "maren", "lit", "warming_up", []]  # plausible ones too, so some inputs pass
    if isinstance(data, dict) and data and rng.random() < 0.8:
        key = rng.choice(list(data))
        data[key] = _mutate_json(rng, data[key])
        return data
    if isinstance(data, list) and data and rng.random() < 0.8:
        i = rng.randrange(len(data))
        data[i] = _mutate_json(rng, data[i])
        return data
    return rng.choice(junk)


def test_fuzz_save(tmp_path):
    rng = random.Random(21)
    scene = load_scene(LIGHTHOUSE)
    original = json.loads(_save_text(scene))
    path = tmp_path / "save.json"
    accepted = refused = 0
    for n in range(200):
        data = json.loads(json.dumps(original))
        for _ in range(rng.randrange(1, 3)):
            data = _mutate_json(rng, data)
        text = json.dumps(data)
        if n % 10 == 0:
            text = text[: rng.randrange(len(text))]  # a torn write
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            state = load_state(path, scene)
        except SaveError as exc:
            assert "save.json" in str(exc)
            refused += 1
            continue
        accepted += 1
        story = Story(scene, state)
        story.state.to_json().encode("utf-8")  # saving it again works
        assert _finite(story.state.model_dump())
    assert accepted >= 5 and refused > 50, (accepted, refused)


def test_fuzz_playthrough(tmp_path):
    rng = random.Random(22)
    scripts = [p.read_text() for p in sorted((LIGHTHOUSE / "playthroughs").glob("*.play"))]
    numbers = ["inf", "nan", "-1", "1.2.3", "1e400", "0x10", "", "3600.5", "١٢", "+", "."]
    path = tmp_path / "fuzz.play"
    accepted = refused = 0
    for _ in range(300):
        text = rng.choice(scripts)
        for _ in range(rng.randrange(1, 4)):
            text = _mutate_text(rng, text)
            if rng.random() < 0.4:
                words = text.split(" ")
                words[rng.randrange(len(words))] = rng.choice(numbers)
                text = " ".join(words)
        raw = text.encode("utf-8", "surrogatepass")
        if rng.random() < 0.1:
            raw = raw.replace(b"e", b"\xe9", 1)  # Latin-1 bytes
        path.write_bytes(raw)
        try:
            pt = parse_playthrough(path, scene_dir=LIGHTHOUSE)
        except PlaythroughSyntaxError as exc:
            assert str(exc).startswith(f"{path}:")
            refused += 1
            continue
        accepted += 1
        for step in pt.steps:
            assert _finite(step.args.get("seconds", 0.0)) and _finite(step.args.get("point", ()))
            assert 0 <= step.args.get("after_s", 0.0) <= 60 and 0 <= step.args.get("seconds", 0.0) <= 3600
    assert accepted > 30 and refused > 30, (accepted, refused)


def test_fuzz_audio_header(tmp_path):
    rng = random.Random(23)
    good = tmp_path / "good.wav"
    tone = (0.2 * np.sin(np.arange(8000) / 16_000 * 2 * np.pi * 300)).astype(np.float32)
    sf.write(str(good), np.stack([tone, tone], 1), 16_000, subtype="PCM_16")
    original = bytearray(good.read_bytes())
    path = tmp_path / "fuzz.wav"
    accepted = refused = 0
    for n in range(200):
        data = bytearray(original)
        for _ in range(rng.randrange(1, 4)):
            i = rng.randrange(44)  # the RIFF/fmt/data header
            if rng.random() < 0.5:
                data[i] = rng.randrange(256)
            else:
                data[i:i + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x01\x00\x00\x00",
                                            b"\x00\x00\x80\x7f"])
        if n % 20 == 0:
            data = data[: rng.randrange(60)]
        path.write_bytes(bytes(data))
        try:
            out = read_audio(path)
        except AudioError as exc:
            assert "fuzz.wav" in str(exc)
            refused += 1
            continue
        accepted += 1
        assert out.dtype == np.float32 and out.ndim == 1 and np.isfinite(out).all()
        assert 0 < out.size <= MAX_SECONDS * 16_000
    assert accepted > 10 and refused > 20, (accepted, refused)


def test_fuzz_request_body():
    rng = random.Random(24)
    original = {"model": "xrstory", "messages": [{"role": "system", "content": "Be brief."},
                                                 {"role": "user", "content": "hi"}],
                "max_tokens": 40, "temperature": 0.5, "stream": True, "stream_options": {"include_usage": True},
                "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": {
                    "type": "object", "properties": {"say": {"type": "string"}}}}}}
    accepted = refused = 0
    for n in range(500):
        data = json.loads(json.dumps(original))
        for _ in range(rng.randrange(1, 3)):
            data = _mutate_json(rng, data)
        body = json.dumps(data).encode("utf-8", "surrogatepass")
        if n % 7 == 0:
            i = rng.randrange(len(body))
            body = body[:i] + bytes([rng.randrange(256)]) + body[i + 1:]
        if n % 11 == 0:
            body = b"[" * rng.randrange(1, 200_000) + body
        try:
            req = parse_request(body, default_max_tokens=160, max_tokens_limit=512)
        except RequestError as exc:
            assert 400 <= exc.status < 500 and str(exc)
            refused += 1
            continue
        accepted += 1
        assert 1 <= req.max_tokens <= 512 and 0 <= req.temperature <= 2
        assert all(isinstance(m["content"], str) for m in req.messages)
        assert req.schema is None or isinstance(req.schema, dict)
    assert accepted > 30 and refused > 100, (accepted, refused)


@pytest.mark.parametrize("seed", range(3))
def test_fuzz_content_length(seed):
    rng = random.Random(25 + seed)
    pieces = ["-", "+", "0", "1", "9", " ", "e", "x", "\u0663", "", "99999999999999"]
    for _ in range(300):
        value = "".join(rng.choice(pieces) for _ in range(rng.randrange(0, 6)))
        headers = {} if rng.random() < 0.1 else {"Content-Length": value}
        try:
            n = body_length(headers)
        except RequestError as exc:
            assert exc.status in (400, 411, 413)
            continue
        assert 0 <= n <= MAX_BODY_BYTES and value.strip().isdigit()
