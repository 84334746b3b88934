"""RemoteMind and the remote engine against real servers, with the real default model:

- llama.cpp's own HTTP server (xllamacpp listens while the in-process engine runs, the same
  server as ``llama-server``): ``RemoteMind`` streams a reply from it; its JSON Schema support
  keeps the triggers within what the story allows;
- ``xrstory serve`` decoding through the llama.cpp engine (``server_engine.LocalJsonEngine`` on
  an ``Engine``: no decode loop of its own), reached through ``--engine remote``'s engine.
"""

from __future__ import annotations

import pytest
from helpers import lighthouse_fixture, story_at

from xrstory.mind.engine import EngineSpec, load_engine
from xrstory.mind.reply import Reply, Sentence

pytest.importorskip("xllamacpp")
pytestmark = pytest.mark.slow

scene = lighthouse_fixture()


@pytest.fixture(scope="module")
def engine():
    with load_engine(EngineSpec(engine="llamacpp")) as eng:
        yield eng


def test_remote_mind_against_llama_cpps_own_http_server(engine, scene):
    from xrstory.mind.remote import RemoteConfig, RemoteMind

    story = story_at(scene, 0)
    allowed = story.allowed_triggers("maren")
    with RemoteMind(RemoteConfig(base_url=engine._url + "/v1", max_tokens=80), scene) as mind:
        events = list(mind.respond(story, "maren", "It's freezing. Can you light the stove?"))
    reply = next(e for e in events if isinstance(e, Reply))
    timings = events[-1]
    assert "error" not in timings.extra, timings.extra
    assert timings.prompt_tokens > 200 and timings.extra["chunks"] > 5  # really streamed from llama.cpp
    assert set(reply.triggers) <= set(allowed) and reply.say.strip()
    assert any(isinstance(e, Sentence) for e in events) or reply.fallback


def test_serve_decodes_through_the_engine_and_the_remote_engine_reads_it(engine, scene):
    from xrstory.mind.engine_remote import RemoteEngine
    from xrstory.mind.mind import CharacterMind, MindConfig
    from xrstory.mind.server import ServedModel, ServerConfig
    from xrstory.mind.server_engine import LocalJsonEngine

    with ServedModel(LocalJsonEngine(engine), ServerConfig(port=0)) as served:
        remote = RemoteEngine(served.base_url, scene)
        mind = CharacterMind(remote, scene, MindConfig(max_new_tokens=24))
        story = story_at(scene, 0)
        out = mind.ask(story, "maren", "Can you light the stove?")
        remote.close()
    assert out.timings.extra["engine"] == "remote" and "error" not in out.timings.extra, out.timings.extra
    assert out.timings.extra["complete"], out.timings.extra["raw"]
    assert set(out.reply.triggers) <= set(story.allowed_triggers("maren"))
    assert out.sentences and not out.reply.fallback


def test_remote_engine_on_a_dead_server_falls_back(scene):
    from xrstory.mind.engine_remote import RemoteEngine
    from xrstory.mind.mind import CharacterMind, MindConfig

    remote = RemoteEngine("http://127.0.0.1:9/v1", scene)  # nothing listens on the discard port
    out = CharacterMind(remote, scene, MindConfig(max_new_tokens=16)).ask(story_at(scene, 0), "maren", "Hello?")
    remote.close()
    assert out.reply.fallback and "127.0.0.1:9" in out.timings.extra["error"]
