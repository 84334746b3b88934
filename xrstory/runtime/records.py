"""Records a session keeps: one ``TurnRecord`` per exchange (with the monotonic time of every
stage) and one ``Capture`` per frame written to disk. The session fills them; the playthrough
runner, report and expectations read them (both import them from here, never each other).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class TurnRecord:
    """One exchange: the player's line and the character's reply, with stage timestamps
    (``time.monotonic()`` seconds; None where a stage did not happen, e.g. typed input)."""

    turn: int
    step_line: int
    player_text: str  # what the script said
    heard_text: str = ""  # what ASR heard (== player_text for typed input)
    character: str = ""
    say: str = ""
    emotion: str = ""
    triggers: list[str] = field(default_factory=list)
    fired: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    fallback: bool = False
    fallback_reason: str = ""  # why the model's words were replaced (spoken and subtitled all the same)
    moderated: bool = False
    interrupted: bool = False
    spoken: bool = True  # False for typed input
    t_speech_end: float | None = None  # the player really stopped (Heard.t_speech_end)
    t_endpoint: float | None = None  # the VAD decided the turn was over (Heard.t_end_of_speech)
    t_heard: float | None = None  # the final transcript was ready (typed: submitted)
    t_thinking: float | None = None  # the mind started on the line before it was final (think-ahead)
    t_first_token: float | None = None
    t_first_sentence: float | None = None
    t_first_audio: float | None = None  # the reply's first sample left the mixer
    t_reply_done: float | None = None
    capture: str | None = None  # frame PNG captured at the reply

    def stage_ms(self) -> dict[str, float | None]:
        """Latency of each stage, ms (docs/ARCHITECTURE.md, "Latency"): consecutive stamps, so
        the stages add up to ``voice_to_voice_ms``, from the true end of the player's speech (or
        the moment typed text was submitted) to the reply's first sample leaving the mixer.

        A stage is what the player waited in it: when the mind thought ahead (``t_thinking``), its
        first token or sentence can come before the transcript was final, and that stage counts 0
        (each stamp is taken as no earlier than the one before it). What the mind itself took is in
        ``mind_first_token_ms`` / ``mind_first_sentence_ms``, from when it was asked (``t_thinking``,
        else ``t_heard``); ``think_ahead_ms`` is how much earlier than the final transcript that was."""
        start = self.t_speech_end if self.t_speech_end is not None else self.t_heard
        decided = self.t_endpoint if self.t_endpoint is not None else self.t_speech_end

        def ms(a, b):
            return None if a is None or b is None else round((b - a) * 1000.0, 1)

        def no_earlier(t, before):
            return t if t is None or before is None else max(t, before)

        first_token = no_earlier(self.t_first_token, self.t_heard)
        first_sentence = no_earlier(self.t_first_sentence, first_token)
        asked = self.t_thinking if self.t_thinking is not None else self.t_heard
        return {
            "endpoint_ms": ms(self.t_speech_end, self.t_endpoint),
            "asr_ms": ms(decided, self.t_heard),
            "first_token_ms": ms(self.t_heard, first_token),
            "first_sentence_ms": ms(first_token, first_sentence),
            "first_audio_ms": ms(first_sentence, no_earlier(self.t_first_audio, first_sentence)),
            "voice_to_voice_ms": ms(start, self.t_first_audio),
            "reply_total_ms": ms(self.t_heard, self.t_reply_done),
            "think_ahead_ms": ms(self.t_thinking, self.t_heard),
            "mind_first_token_ms": ms(asked, self.t_first_token),
            "mind_first_sentence_ms": ms(asked, self.t_first_sentence),
        }

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(self.stage_ms())
        return d


@dataclass
class Capture:
    t: float  # seconds since the session started
    label: str
    path: str
