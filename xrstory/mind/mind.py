"""A character's turn: prompt -> constrained stream -> sentences while generating -> one committed Reply.

The runtime calls ``CharacterMind.respond`` from a worker thread and forwards its events:

    ReplyStarted            (first token chosen by the model)
    Sentence, Sentence, ... (complete sentences of ``say``, while the rest is still generated)
    Reply                   (committed: say, emotion, triggers; triggers only now)
    TurnTimings             (always last)

Decoding is constrained to the triggers the story allows the character at the start of the
turn (``schema.reply_lark``: each allowed trigger at most once); the caller applies the reply's
triggers through ``Story.apply`` (which checks again). The decoding itself is an ``Engine``
(``engine.py``: llama.cpp in process, torch, or a remote server); an engine error or a prompt
that does not fit ends the turn in the character's fallback line (logged), never in a crash.

Run one turn:  .venv/bin/xrstory ask scenes/lighthouse maren "Can you light the stove?"
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from xrstory.mind.engine import (
    ContextOverflow,
    DecodeRequest,
    DecodeResult,
    Engine,
    EngineError,
    Sampling,
)
from xrstory.mind.fallback import fallback_reply, validate_reply
from xrstory.mind.prompt import (
    HistoryLine,
    PromptBudget,
    PromptTooLong,
    cache_messages,
    plan_prompt,
)
from xrstory.mind.reply import Reply, ReplyStarted, Sentence, TurnTimings, reply_from_json
from xrstory.mind.say_stream import SayStream
from xrstory.mind.schema import MAX_SAY_CHARS, reply_lark
from xrstory.story.scene import PLAYER, Scene
from xrstory.story.state import Story

log = logging.getLogger(__name__)

Moderator = Callable[[str], "str | None"]  # sentence -> text to release (maybe rewritten), or None to withhold
TurnEvent = ReplyStarted | Sentence | Reply | TurnTimings


@dataclass(frozen=True)
class MindConfig:
    max_new_tokens: int = 120  # tokens of say (the trigger list before it not counted) before it is steered to close
    # tokens of the reply besides say: '{"triggers": [...], "say": "', '", "emotion": "..."}' and
    # the end of sequence; with say's budget, the hard cap an engine without steering gets
    json_tokens: int = 48
    sampling: Sampling = Sampling()
    budget: PromptBudget = PromptBudget()
    # compute every character's cached prompt (system message, then the conversation) at load and
    # after each turn, so the next turn prefills only its own part: for sessions (the time is
    # spent while the reply is spoken); off for evaluation, whose turns share no conversation
    prime: bool = False
    # a long first sentence is spoken from its first clause of this many words (0: whole sentences)
    first_clause_words: int = 4


@dataclass
class TurnOutcome:
    """Everything one turn produced (``CharacterMind.ask`` collects the events into this)."""

    reply: Reply
    timings: TurnTimings
    sentences: list[Sentence] = field(default_factory=list)
    allowed_triggers: list[str] = field(default_factory=list)


class CharacterMind:
    """Speaks for the characters of one scene with one loaded model (one worker thread)."""

    def __init__(self, engine: Engine | object, scene: Scene, config: MindConfig | None = None,
                 hints_for: Callable[[str], Iterable[str]] | None = None):
        """``engine``: an ``Engine``; a loaded ``loader.LanguageModel`` is run on the torch engine.
        ``hints_for(character_id)``: the director's hints as the next turn will likely get them
        (the runtime sets it to ``Director.prompt_hints``); priming puts them in the cache, since
        they come before the player's line (without them a turn prefilled ~40 more tokens)."""
        if not isinstance(engine, Engine):
            from xrstory.mind.engine_torch import TorchEngine

            engine = TorchEngine(engine)
        self.engine = engine
        self.scene = scene
        self.config = config or MindConfig()
        self.hints_for = hints_for
        self._primed: tuple[Story, list] | None = None  # what the caches were last primed for
        self._primed_hints: dict[str, list[str]] = {}  # the hints they hold, per character
        self.engine.warm_up(tuple(t.id for t in scene.triggers) or ("a_trigger",))
        if self.config.prime:
            self.prime(Story(scene))

    @property
    def decoder(self):
        """The torch engine's ``ConstrainedDecoder`` (tests, benches); other engines have none."""
        return getattr(self.engine, "decoder", None)

    @property
    def lm(self):
        """The torch engine's ``LanguageModel``; None on other engines."""
        return getattr(self.engine, "lm", None)

    def respond(self, story: Story, character_id: str, player_text: str, history: Iterable[object] = (),
                memories: Iterable[str] = (), hints: Iterable[str] = (), *,
                moderate: Moderator | None = None, should_stop: Callable[[], bool] | None = None,
                on_event: Callable[[TurnEvent], None] | None = None) -> Iterator[TurnEvent]:
        """One turn as a stream of events (see the module docstring); ``on_event`` also gets each."""
        history = list(history)
        reply = None
        for event in self._turn(story, character_id, player_text, history, memories, hints, moderate, should_stop):
            if on_event is not None:
                on_event(event)
            if isinstance(event, Reply):
                reply = event
            yield event
        if self.config.prime and reply is not None and not (should_stop is not None and should_stop()):
            # the conversation as the runtime notes it (the player's line, then this reply) and the
            # state as it will be once the reply's triggers fire, which the runtime does after this
            self.prime(_after_reply(story, reply), history + [HistoryLine(PLAYER, player_text),
                                                             HistoryLine(character_id, reply.say)])

    def refresh_prime(self) -> dict[str, DecodeResult | None]:
        """Prime again the characters whose hints changed since their last priming (the director
        learned something from the turn just over); nothing is computed when none did. The runtime
        calls it when its thread is idle."""
        if self._primed is None or self.hints_for is None:
            return {}
        changed = {ch.id for ch in self.scene.characters
                   if list(self.hints_for(ch.id)) != self._primed_hints.get(ch.id)}
        return self.prime(*self._primed, only=changed) if changed else {}

    def prime(self, story: Story, history: Iterable[object] = (),
              only: set[str] | None = None) -> dict[str, DecodeResult | None]:
        """Compute each character's prompt up to the end of ``history`` in its cache (the next
        turn's prompt starts with it); a failure is logged and the turn will prefill it instead.
        Called after each turn, and by the runtime again when the state changes between turns (a
        prop the player used): only what changed is prefilled. ``only``: these characters."""
        out: dict[str, DecodeResult | None] = {}
        history = list(history)
        self._primed = (story, history)
        for ch in self.scene.characters:
            if only is not None and ch.id not in only:
                continue
            try:
                hints = list(self.hints_for(ch.id)) if self.hints_for is not None else []
                self._primed_hints[ch.id] = hints
                plan = plan_prompt(self.scene, story.state, ch.id, "...", history, hints=hints,
                                   budget=self.config.budget, count_tokens=self.engine.count_tokens,
                                   special_tokens=self.engine.special_tokens)
                out[ch.id] = self.engine.prefill(ch.id, cache_messages(self.scene, plan))
            except (PromptTooLong, EngineError) as exc:
                log.warning("could not prime the prompt cache of '%s': %s", ch.id, exc)
                out[ch.id] = None
        return out

    def ask(self, story: Story, character_id: str, player_text: str, **kwargs) -> TurnOutcome:
        """``respond`` collected: the whole turn at once (CLI, tests, scripts)."""
        sentences, reply, timings = [], None, None
        for event in self.respond(story, character_id, player_text, **kwargs):
            if isinstance(event, Sentence):
                sentences.append(event)
            elif isinstance(event, Reply):
                reply = event
            elif isinstance(event, TurnTimings):
                timings = event
        assert reply is not None and timings is not None  # _turn always ends with both
        return TurnOutcome(reply, timings, sentences, list(timings.extra.get("allowed_triggers", [])))

    def _say_chars(self) -> int:
        return min(MAX_SAY_CHARS, 6 * self.config.max_new_tokens)

    def _request(self, character_id: str, plan, allowed: list[str]) -> DecodeRequest:
        cfg = self.config
        # no character may echo a recent character line (Tobias repeated Maren's word for word);
        # the player's words stay free to take up ("light the stove" -> "I'll light the stove")
        avoid = tuple(line.text for line in plan.history if line.speaker != "player")
        # say's length in characters bounds it on engines that cannot steer per token (SmolLM2 writes
        # ~4.5 characters a token; 6 leaves room to end the sentence: at 4, a reply of 20 tokens was
        # cut mid-sentence and streamed as one sentence far more often than on the torch loop)
        say_chars = self._say_chars()
        return DecodeRequest(key=character_id, messages=plan.messages, lark=reply_lark(allowed, max_say_chars=say_chars),
                             allowed_triggers=tuple(allowed), max_tokens=cfg.max_new_tokens + cfg.json_tokens,
                             say_tokens=cfg.max_new_tokens, sampling=cfg.sampling, avoid=avoid)

    def _turn(self, story: Story, character_id: str, player_text: str, history, memories, hints,
              moderate: Moderator | None, should_stop) -> Iterator[TurnEvent]:
        t0 = time.perf_counter()
        character = self.scene.character(character_id)  # KeyError naming the scene
        allowed = story.allowed_triggers(character_id)  # fixed for the whole turn
        say = SayStream(first_clause_words=self.config.first_clause_words)
        released: list[str] = []
        withheld = 0
        index = 0
        started = False
        first_sentence_ms = 0.0
        result = DecodeResult()
        error = ""
        dropped: list[str] = []
        prompt_ms = 0.0
        try:
            plan = plan_prompt(self.scene, story.state, character_id, player_text, list(history), list(memories),
                               list(hints), allowed_triggers=allowed, budget=self.config.budget,
                               count_tokens=self.engine.count_tokens, special_tokens=self.engine.special_tokens)
            dropped = plan.dropped
            if plan.dropped:
                log.info("prompt for %s: left out %s", character_id, "; ".join(plan.dropped))
            request = self._request(character_id, plan, allowed)
            prompt_ms = (time.perf_counter() - t0) * 1000
            for delta, result in self.engine.stream(request, should_stop):
                if not started and result.first_token_ms:
                    started = True
                    yield ReplyStarted(character_id, t=time.monotonic())
                texts = say.feed(delta) if delta else []
                if say.closed:
                    tail = say.rest()
                    if tail and released and len(say.say) >= self._say_chars() and tail[-1] not in ".!?…\"'":
                        # the grammar's character bound closed say mid-sentence (llama.cpp cannot
                        # steer it to close): what was said stands, the fragment is not spoken
                        result.cut_at_limit = True
                        tail = None
                    if tail:
                        texts.append(tail)
                for text in texts:
                    out = moderate(text) if moderate is not None else text
                    if out is None:
                        withheld += 1
                        continue
                    released.append(out)
                    yield Sentence(character_id, out, index, t=time.monotonic())
                    if index == 0:
                        first_sentence_ms = (time.perf_counter() - t0) * 1000
                    index += 1
        except (PromptTooLong, ContextOverflow, EngineError) as exc:
            # the session goes on: the character says its fallback line, the log says why
            error = f"{type(exc).__name__}: {exc}"
            log.warning("turn of '%s' failed, fallback line instead: %s", character_id, error)
            result = DecodeResult(finish_reason="error")
        if not started:
            yield ReplyStarted(character_id, t=time.monotonic())

        reply = (fallback_reply(character, error) if error
                 else self._commit(character, result, released, withheld, allowed))
        total_ms = (time.perf_counter() - t0) * 1000
        yield reply
        yield TurnTimings(
            prefill_ms=result.prefill_ms, first_token_ms=result.first_token_ms + prompt_ms,
            first_sentence_ms=first_sentence_ms if index else 0.0, total_ms=total_ms,
            tokens=result.tokens, prompt_tokens=result.prompt_tokens,
            cached_prompt_tokens=result.cached_prompt_tokens,
            extra={"allowed_triggers": allowed, "prompt_dropped": dropped, "prompt_ms": prompt_ms,
                   "engine": self.engine.name, "finish_reason": result.finish_reason,
                   "forced_tokens": result.forced_tokens, "mask_ms": result.mask_ms,
                   "forward_ms": result.forward_ms, "cut_at_limit": result.cut_at_limit,
                   "complete": result.complete, "withheld_sentences": withheld, "raw": result.text,
                   **({"error": error} if error else {})})

    def _commit(self, character, result: DecodeResult, released: list[str], withheld: int,
                allowed: list[str]) -> Reply:
        """The committed reply; triggers are read here, from the complete output only."""
        if not result.complete:
            line = character.fallback_lines[0] if character.fallback_lines else "..."
            return Reply(character.id, " ".join(released) or line, "neutral", (), fallback=True,
                         fallback_reason="stopped before the reply was complete")
        try:
            parsed = reply_from_json(result.text, character.id)  # the grammar accepted it
        except ValueError:  # an engine that did not enforce the grammar: the one gate for any output
            return validate_reply(result.text, allowed, character, finish_reason=result.finish_reason)
        if any(t not in allowed for t in parsed.triggers):  # defence in depth; Story.apply checks too
            parsed = Reply(parsed.character, parsed.say, parsed.emotion,
                           tuple(t for t in parsed.triggers if t in allowed))
        say = " ".join(released)
        if withheld:
            return Reply(character.id, say or (character.fallback_lines or ["..."])[0], parsed.emotion, parsed.triggers,
                         fallback=not say, fallback_reason=f"moderation withheld {withheld} sentence(s)")
        if result.cut_at_limit:
            return Reply(character.id, say or parsed.say, parsed.emotion, parsed.triggers,
                         fallback_reason="say cut at the token limit")
        return parsed


def _after_reply(story: Story, reply: Reply) -> Story:
    """A copy of ``story`` with ``reply``'s triggers applied (each checked again; a refused one is
    skipped): the next turn's state when the runtime fires them, so priming computes its facts.
    Where the runtime withholds them (a cut-off reply), the next turn reuses the cache up to them."""
    after = Story(story.scene, story.state.model_copy(deep=True))
    for trigger in reply.triggers:
        after.apply(trigger, by=reply.character)
    return after
