"""A character mind on any OpenAI-compatible server (vLLM, llama.cpp server, Ollama, ``xrstory serve``).

For many players sharing a GPU pool: the prompt is the same one the local mind builds
(``prompt.build_messages``), the reply is constrained by the server's structured-output
support (``response_format={"type": "json_schema", ...}`` with ``schema.reply_schema(allowed)``),
and the answer streams back (``stream=true``) so sentences are released as they complete.

Servers may ignore the schema, stop at the token limit, or fail. So every reply goes through
``fallback.validate_reply`` (unknown or disallowed triggers dropped, bad output replaced by an
in-character line) and, when a ``Moderator`` is given, through ``moderation.moderate_turn``;
network and HTTP errors also end in the character's fallback line. ``respond`` never raises
for anything the server does.

Use it with a server running (e.g. ``xrstory serve --port 8000``):
``xrstory play scenes/lighthouse --remote http://127.0.0.1:8000/v1`` (or ``xrstory run --remote``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace

from xrstory.mind.fallback import fallback_reply, has_lone_surrogate, validate_reply
from xrstory.mind.moderation import Moderator, moderate_turn
from xrstory.mind.prompt import build_messages
from xrstory.mind.remote_pump import ChunkPump, TurnDeadline
from xrstory.mind.reply import Reply, ReplyStarted, Sentence, TurnTimings
from xrstory.mind.say_stream import SayStream
from xrstory.mind.schema import reply_schema
from xrstory.story.scene import Scene
from xrstory.story.state import Story

log = logging.getLogger("xrstory.mind.remote")

TurnEvent = ReplyStarted | Sentence | Reply | TurnTimings


@dataclass(frozen=True)
class RemoteConfig:
    base_url: str  # e.g. "http://127.0.0.1:8000/v1" (the OpenAI client appends /chat/completions)
    model: str = "xrstory"  # the server's model name (vLLM: the served model; Ollama: the tag)
    api_key: str = "not-needed"  # local servers ignore it; the client insists on one
    max_tokens: int = 160  # a 400-character say is ~100 tokens; the rest is JSON
    temperature: float = 0.0  # greedy: the same turn gives the same reply (replays, tests)
    # OpenAI-style penalties (vLLM, llama.cpp and Ollama honour them): small models loop
    # ("the fog bell is on, the fog bell is on, ...") without; 0.5/0.5 measured on SmolLM2-135M
    frequency_penalty: float = 0.5
    presence_penalty: float = 0.5
    timeout_s: float = 60.0  # the whole turn (connect, wait, every chunk): a trickling server cannot hold it longer
    max_triggers: int = 2
    special_tokens: tuple[str, ...] = ()  # the served model's special-token strings (untrusted.make_safe)

    def __post_init__(self):
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"RemoteConfig.base_url must be an http(s) URL, got {self.base_url!r}")
        if self.max_tokens < 1:
            raise ValueError(f"RemoteConfig.max_tokens must be >= 1, got {self.max_tokens}")


class RemoteMind:
    """Speaks for the characters of one scene through a server. A context manager (it owns an
    HTTP connection pool); safe to share between threads (the OpenAI client is)."""

    def __init__(self, config: RemoteConfig, scene: Scene, moderator: Moderator | None = None):
        from openai import OpenAI  # imported here: the story/render layers never need it

        self.scene = scene
        self.config = config
        self.moderator = moderator
        # max_retries=0: a turn is interactive; the fallback line beats a silent retry
        self._client = OpenAI(base_url=config.base_url, api_key=config.api_key,
                              timeout=config.timeout_s, max_retries=0)

    def __enter__(self) -> RemoteMind:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def respond(self, story: Story, character_id: str, player_text: str, history: Iterable[object] = (),
                memories: Iterable[str] = (), hints: Iterable[str] = (), *,
                moderate: Callable[[str], str | None] | None = None,
                should_stop: Callable[[], bool] | None = None,
                on_event: Callable[[TurnEvent], None] | None = None) -> Iterator[TurnEvent]:
        """One turn, the same events and keywords as the local ``CharacterMind.respond``:
        ``ReplyStarted``, ``Sentence``s, one ``Reply``, then ``TurnTimings``.

        ``moderate(sentence) -> text | None`` withholds sentences (None) as the local mind does;
        a turn with a withheld sentence ends in the fallback line. The constructor's
        ``moderator`` instead ends the turn at the first refused sentence. ``should_stop()``
        true ends the stream at once (barge-in, polled every 20 ms even while the server is
        silent); the reply is then a fallback, and nothing fires. The turn as a whole ends
        after ``timeout_s`` (the fallback line), however slowly the server sends.
        """
        character = self.scene.character(character_id)  # KeyError naming the scene
        allowed = story.allowed_triggers(character_id)  # fixed for the whole turn
        messages = build_messages(self.scene, story.state, character_id, player_text, history, memories,
                                  hints, allowed_triggers=allowed, special_tokens=self.config.special_tokens)
        events = self._stream(messages, allowed, character, should_stop)
        if self.moderator is not None:
            events = moderate_turn(events, self.moderator, character)
        released = withheld = 0
        for event in events:
            if moderate is not None and isinstance(event, Sentence):
                text = moderate(event.text)
                if text is None:
                    withheld += 1
                    continue
                event = replace(event, text=text, index=released)
                released += 1
            elif isinstance(event, Reply) and withheld and not event.fallback:
                event = fallback_reply(character, f"moderation withheld {withheld} sentence(s)", event.say)
            if on_event is not None:
                on_event(event)
            yield event

    def _stream(self, messages: list[dict], allowed: list[str], character,
                should_stop: Callable[[], bool] | None) -> Iterator[TurnEvent]:
        cfg = self.config
        timings = TurnTimings(extra={"allowed_triggers": allowed, "server": cfg.base_url})
        t0 = time.monotonic()
        deadline = t0 + cfg.timeout_s  # the whole turn, however the server trickles
        schema = reply_schema(allowed, cfg.max_triggers)
        say = SayStream()
        raw: list[str] = []  # the server's text, exactly as sent
        finish_reason: str | None = None
        started = False
        index = 0

        def sentence(text: str) -> Sentence:
            nonlocal index
            if index == 0:
                timings.first_sentence_ms = (time.monotonic() - t0) * 1000
            index += 1
            return Sentence(character.id, text, index - 1, time.monotonic())

        request = dict(
            model=cfg.model, messages=messages, stream=True, max_tokens=cfg.max_tokens,
            temperature=cfg.temperature, frequency_penalty=cfg.frequency_penalty,
            presence_penalty=cfg.presence_penalty, stream_options={"include_usage": True},
            response_format={"type": "json_schema",
                             "json_schema": {"name": "reply", "schema": schema, "strict": True}})
        pump = ChunkPump(self._client, request, cfg.timeout_s)
        try:
            for chunk in pump.chunks(deadline, should_stop):
                if chunk is None:  # should_stop() came true: barge-in, cut at once
                    finish_reason = "interrupted"
                    break
                if chunk.usage is not None:  # the last chunk, when the server reports usage
                    timings.prompt_tokens = chunk.usage.prompt_tokens or 0
                    timings.tokens = chunk.usage.completion_tokens or 0
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                finish_reason = choice.finish_reason or finish_reason
                piece = choice.delta.content or ""
                if not piece:
                    continue
                raw.append(piece)
                if not started:
                    started = True
                    timings.first_token_ms = (time.monotonic() - t0) * 1000
                    yield ReplyStarted(character.id, time.monotonic())
                for text in self._feed(say, piece):
                    yield sentence(text)
        except Exception as exc:  # broad on purpose: no server behaviour may end a session
            # APIError: connection refused, timeout, HTTP 4xx/5xx; TurnDeadline: the whole turn
            # took longer than timeout_s. Unwrapped: transport errors of the client's HTTP library
            # mid-stream, and malformed event data (ValueError); a traceback is logged for those.
            from openai import APIError

            timings.extra["error"] = f"{type(exc).__name__}: {exc}"
            log.warning("remote mind at %s failed for '%s': %s", cfg.base_url, character.id, exc,
                        exc_info=not isinstance(exc, APIError | TurnDeadline))
            if not started:
                yield ReplyStarted(character.id, time.monotonic())
            yield fallback_reply(character, f"remote server error: {type(exc).__name__}: {exc}")
            timings.total_ms = (time.monotonic() - t0) * 1000
            yield timings
            return
        finally:
            pump.close()
        text = "".join(raw)
        if say.closed and finish_reason not in ("length", "interrupted"):
            tail = say.rest()  # the last words of say without an end mark
            if tail and not has_lone_surrogate(tail):
                yield sentence(tail)
        if not started:
            yield ReplyStarted(character.id, time.monotonic())
        if finish_reason == "interrupted":
            reply = fallback_reply(character, "interrupted before the reply was complete", text)
        else:
            reply = validate_reply(text, allowed, character, finish_reason=finish_reason,
                                   max_triggers=schema["properties"]["triggers"]["maxItems"])
        yield reply
        timings.total_ms = (time.monotonic() - t0) * 1000
        timings.extra.update(finish_reason=finish_reason, raw=text, chunks=len(raw))
        yield timings

    @staticmethod
    def _feed(say: SayStream, piece: str) -> list[str]:
        try:
            sentences = say.feed(piece)
            bad = [s for s in sentences if has_lone_surrogate(s)]
            if bad:
                raise ValueError(f"a lone surrogate escape in {bad[0]!r}")
            return sentences
        except ValueError as exc:  # e.g. a broken \u escape from a server that ignores schemas
            log.warning("could not read say from the streamed reply (%s); no more sentences", exc)
            say.feed = lambda _piece: []  # this stream is unreadable; validate_reply judges the text
            return []
