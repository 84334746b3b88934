"""The session: one story on a display's frame loop, composed of explicit parts.

Frame-loop side (this thread, never waits):
  ``voice``  ``voice.duplex.Duplex``: mic queue, room echo (headless), echo canceller, VAD, ASR
             jobs, the head-relative mixer, barge-in, push-to-talk; ``step`` per 32 ms chunk;
  ``stage``  ``runtime.stage.Stage``: renderer, subtitles, picking, captures;
  ``gaze`` / ``silence``  feeds of head pose and quiet time to the director (``gaze_feed``,
             ``silence_feed``).
Conversation side:
  ``conversation``  ``runtime.conversation.Conversation``: turns, the ledger, triggers through
             ``Story.apply``;
  ``brain``  ``runtime.brain.BrainWorker`` (its own thread): director, memory, mind; speaks
             through the ``mouth`` (``voice.mouth.Mouth``, its own TTS thread).
Each ``tick(frame)``: the duplex loop runs the chunks of audio time the frame owes (the head pose
places the listener, talk-button edges gate the mic); its events become transcript entries, turns
and barge-ins; the brain's events are drained; the stage draws; gaze and silence go to the
director; a due nudge opens once nothing else is going on.

Run it through ``xrstory play`` (live) or ``xrstory run`` (scripted playthroughs); both launch it
with ``runtime.launch``.
"""

from __future__ import annotations

import copy
import queue
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from xrstory.runtime import events as ev
from xrstory.runtime.brain import BrainWorker
from xrstory.runtime.config import SessionConfig
from xrstory.runtime.conversation import Conversation
from xrstory.runtime.gaze_feed import GazeFeed
from xrstory.runtime.jobs import NewThreads, lower_threads, yield_to_frame_loop
from xrstory.runtime.silence_feed import SilenceFeed
from xrstory.runtime.stage import Stage
from xrstory.runtime.transcript import Transcript
from xrstory.runtime.turns import TurnLedger
from xrstory.story.state import Story, StoryState
from xrstory.voice import events as voice_ev
from xrstory.voice.clock import CHUNK
from xrstory.voice.duplex import Duplex, DuplexConfig, DuplexInputs
from xrstory.voice.events import EAR_RATE
from xrstory.voice.spatial import Listener
from xrstory.xr.backend import Frame, InputKind

SAMPLING_TEMPERATURE = 0.7  # with a playthrough's ``seed N`` (N > 0): sampled, reproducibly
SAMPLING_TOP_P = 0.9


def whisper_prompt(scene) -> str:
    """The words Whisper should expect in this scene: it spells names right and hears the story's
    verbs ("fetch the oil", not "catch the oil") when it is told them up front."""
    names = [c.name for c in scene.characters] + list(scene.scene.speech_hints)
    actions = [t.id.replace("_", " ") for t in scene.triggers]
    things = [p.name for p in scene.props if p.interactive and p.name]
    return f"{scene.scene.title}. {', '.join(names)}. {', '.join(actions)}. {', '.join(things)}."


def make_mind(config: SessionConfig, components, scene):
    """The mind the config asks for: remote server or the loaded model; ``seed`` > 0 samples."""
    from xrstory.mind.decoder import Sampling
    from xrstory.mind.mind import CharacterMind, MindConfig

    if config.remote_url:
        from xrstory.mind.remote import RemoteConfig, RemoteMind

        temperature = SAMPLING_TEMPERATURE if config.seed else 0.0
        return RemoteMind(RemoteConfig(base_url=config.remote_url, temperature=temperature), scene)
    sampling = (Sampling(temperature=SAMPLING_TEMPERATURE, top_p=SAMPLING_TOP_P, seed=config.seed)
                if config.seed else Sampling())
    return CharacterMind(components.language_model, scene,
                         MindConfig(max_new_tokens=config.max_new_tokens, sampling=sampling, prime=True))


def make_director(config: SessionConfig, story: Story):
    """(director, profile store or None). The director gets its own state dict, seeded from the
    story (a resumed save's counters carry on), never shared with it: the brain thread writes it,
    the frame loop gets copies."""
    from xrstory.director import Director, ProfileConfig, ProfileStore

    pacing, state = config.pacing, copy.deepcopy(story.state.director)
    if config.player_id is None:
        return Director(story, pacing=pacing, state=state), None
    profile = ProfileStore(ProfileConfig(data_dir=config.data_dir) if config.data_dir else ProfileConfig())
    return Director(story, profile, config.player_id, pacing=pacing, state=state), profile


def listener_of(head) -> Listener:
    """The mixer's listener at a display's head pose (metres; quaternion x, y, z, w)."""
    return Listener(tuple(float(v) for v in head.position), tuple(float(v) for v in head.orientation))


class Session:
    def __init__(self, config: SessionConfig, components, scene, state: StoryState | None = None,
                 display=None, on_event: Callable[[ev.Event, float], None] | None = None, capture_dir: Path | None = None,
                 mind=None):
        from xrstory.mind.memory import MemoryStore
        from xrstory.mind.moderation import Moderator
        from xrstory.voice.ear import Ear
        from xrstory.voice.echo import AcousticPath, AcousticPathConfig, EchoCanceller
        from xrstory.voice.mixer import Mixer
        from xrstory.voice.mouth import Mouth

        self.config, self.components, self.scene, self.display = config, components, scene, display
        self.story = Story(scene, state)
        self.time = 0.0  # scene seconds (audio time)
        self.transcript = Transcript(lambda: self.time, on_event)
        self.ledger = TurnLedger()
        if hasattr(components.asr, "config"):
            components.asr.config = replace(components.asr.config, initial_prompt=whisper_prompt(scene))
        self.mouth = Mouth(components.tts, Mixer(ambient_gain=0.04))
        leak = (AcousticPath(AcousticPathConfig(gain=config.echo_gain))
                if config.echo_gain > 0 and config.display == "headless" else None)
        self.voice = Duplex(Ear(components.asr, components.vad_model, echo_canceller=EchoCanceller()),
                            self.mouth, leak=leak, config=DuplexConfig(keep_mix=config.keep_audio))
        memory = (MemoryStore.load_from(self.story.state, components.embedder)
                  if components.embedder is not None else None)
        self.director, self._profile = make_director(config, self.story)
        self._out: queue.Queue = queue.Queue()  # brain thread -> frame loop
        with NewThreads() as made:  # the mind's warm-up may start more of the engine's threads
            mind = mind or make_mind(config, components, scene)
        self._compute_threads = set(getattr(components, "compute_threads", ())) | made.ids
        self.brain = BrainWorker(mind, scene, self.mouth, self._out,
                                 memory=memory, director=self.director,
                                 moderator=Moderator.for_scene(scene.folder))
        self.gaze = GazeFeed(scene, self.brain)  # head pose -> dwell -> director (brain thread)
        self.silence = SilenceFeed(self.brain)  # quiet seconds -> director.on_time (brain thread)
        self.stage = Stage(display, scene, capture_dir)
        self.conversation = Conversation(self.story, self.brain, self.ledger, self.transcript, self.gaze,
                                         self._play_cue)
        self.conversation.on_sentence = lambda c, text: self.stage.subtitle(c, text, self.time)
        self.conversation.on_reply = lambda turn, c: self.stage.capture_due(f"reply {turn} {c}")
        self.conversation.on_fired = lambda trig: self.stage.capture_due(f"trigger {trig}")
        self.frame_ms_idle: list[float] = []
        self.frame_ms_busy: list[float] = []
        self.frame_busy: list[bool] = []  # per frame: were workers busy (for the display's own timings)
        self._audio_debt = 0.0  # samples of audio time owed to the frames so far
        self._talk: list[bool] = []  # talk-button edges waiting for the next audio chunk
        self._script_line: tuple[str, int] = ("", 0)  # the scripted line being spoken (text, step line)
        # scripted player audio queued and not yet heard; None: no scripted audio (a live microphone)
        self._script_pending: int | None = None

    # -- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> Session:
        self.brain.start()
        self.voice.ear.start()
        for thread in (self.brain.thread, self.voice.ear.thread):
            yield_to_frame_loop(thread, self.config.worker_nice)
        yield_to_frame_loop(self.mouth.thread, self.config.tts_nice)
        lower_threads(self._compute_threads, self.config.compute_nice)
        self.stage.open(self.story.state)
        return self

    def __exit__(self, *exc) -> None:
        self.brain.close()
        self.mouth.close()
        self.voice.ear.close()
        self.voice.__exit__(*exc)
        self.stage.close()
        if self._profile is not None:
            self._profile.close()

    # -- what the session is doing ---------------------------------------------------------
    @property
    def events(self) -> list[dict]:
        return self.transcript.events

    @property
    def captures(self):
        return self.stage.captures

    @property
    def mixer(self):
        return self.mouth.mixer

    @property
    def busy(self) -> bool:
        """Any worker doing something, or speech pending/playing."""
        return self.brain.busy or self.mouth.busy or self.mixer.busy or self.voice.hearing

    @property
    def hearing(self) -> bool:
        """Player audio still on its way: queued, inside an open speech segment, or in Whisper."""
        return self.voice.hearing

    @property
    def speaking(self) -> bool:
        return bool(self.mixer.speaking)

    # -- inputs ------------------------------------------------------------------------
    def queue_player_audio(self, audio16: np.ndarray, text: str = "", step_line: int = 0) -> None:
        """Player speech (16 kHz mono) that enters the microphone from the next frame on."""
        self.voice.queue_mic(audio16, speech_end=True)  # a whole scripted line: its end is known exactly
        self._script_line = (text, step_line)
        self._script_pending = (self._script_pending or 0) + 1

    def queue_microphone(self, chunk16: np.ndarray) -> None:
        """One live microphone chunk: (CHUNK,) float32 at 16 kHz; safe from the microphone's thread."""
        self.voice.queue_mic(chunk16)

    def player_says_text(self, text: str, step_line: int = 0) -> int:
        """The text-only path: the line goes straight to the director and the mind."""
        return self.conversation.player_line(text, text, step_line, spoken=False, t_speech_end=None,
                                             t_heard=time.monotonic())

    def press(self, target: str, step_line: int = 0) -> int:
        return self.conversation.press(target, step_line)

    # -- the frame -----------------------------------------------------------------------
    def tick(self, frame: Frame | None) -> None:
        """One frame: audio in and out, events, picture. Never waits on a worker.

        Audio advances in 32 ms chunks by the frame's own time step (a 31.25 fps headless frame
        is exactly one chunk; a 90 Hz headset frame owes a chunk about every third frame)."""
        t_start = time.perf_counter()
        busy = self.busy
        dt = CHUNK / EAR_RATE if frame is None or not frame.dt and frame.index == 0 else frame.dt
        head = listener_of(frame.head) if frame is not None else None
        if frame is not None:
            self._talk += [e.kind is InputKind.PUSH_TO_TALK_DOWN for e in frame.input_events
                           if e.kind in (InputKind.PUSH_TO_TALK_DOWN, InputKind.PUSH_TO_TALK_UP)]
        self._audio_debt += dt * EAR_RATE + 1e-6  # float steps of 32 ms must not lose a chunk
        while self._audio_debt >= CHUNK:
            self._audio_debt -= CHUNK
            talk, self._talk = tuple(self._talk), []
            for v in self.voice.step(head, DuplexInputs(push_to_talk=talk)):
                self._on_voice(v)
            self.time += CHUNK / EAR_RATE
        self._drain_brain()
        for target in self.stage.frame(frame, self.story.state, self.time, self.mixer.speaking):
            self.press(target)
        if frame is not None:
            self.gaze.update(frame.head.position, frame.head.orientation, frame.dt)
        self.silence.update(dt, waiting=self.hearing or self.brain.busy or self.conversation.pending_nudge is not None,
                            speaking=self.mouth.busy or bool(self.mixer.speaking),
                            next_turn=self.conversation.next_turn)
        self.conversation.nudge_if_due(idle=not self.busy)
        self.story.state.time = self.time
        ms = (time.perf_counter() - t_start) * 1000.0
        (self.frame_ms_busy if busy else self.frame_ms_idle).append(ms)
        self.frame_busy.append(busy)
        self.stage.capture(frame, self.time, self.ledger)

    def _on_voice(self, v: voice_ev.VoiceEvent) -> None:
        """One event of the duplex loop: the player's speech, or a character's line playing."""
        c, emit, turn = self.conversation, self.transcript.emit, self.conversation.next_turn
        match v:
            case voice_ev.SpeechStarted():
                emit(ev.PlayerSpeechStarted(turn, v.frame, t=v.t))
                # the duplex loop already stopped what was playing, in the same chunk; the open turns
                # stop too, and with them lines still being synthesised (not playing yet)
                if c.barge_in():
                    self.mouth.interrupt()
            case voice_ev.SpeechEnded():
                emit(ev.PlayerSpeechEnded(turn, round((v.frame - v.start_frame) / EAR_RATE, 3), t=v.t))
            case voice_ev.EndLikely() if self.config.think_ahead and self._script_pending != 0:
                c.think_ahead(v.text)  # held until the Heard of the same line commits it
            case voice_ev.EndRevoked():
                c.revoke_ahead("the player spoke on after the pause")
            case voice_ev.Heard() if v.text.strip() and self._script_pending == 0:
                # a scripted session's only player is its script, and every scripted line was heard
                # already: this is the characters' own audio leaking past the echo guard (a CI arc
                # on 2026-12-01 heard "ok." after the ending and opened a turn on it)
                emit(ev.SpeechRejected(turn, "heard with no scripted player line playing (the session's own "
                                             "audio)", v.text, t=v.t_transcribed))
            case voice_ev.Heard() if v.text.strip():
                text, step_line = self._script_line  # scripted sessions speak one line at a time
                self._script_line = ("", 0)
                if self._script_pending and not v.continues:  # a forced split: the rest of the line follows
                    self._script_pending -= 1
                c.player_line(text or v.text, v.text, step_line, True, v.t_speech_end or v.t_end_of_speech,
                              v.t_transcribed, v.language, v.confidence, t_endpoint=v.t_end_of_speech)
            case voice_ev.Rejected():
                c.revoke_ahead(f"the utterance was rejected: {v.reason}")
                emit(ev.SpeechRejected(turn, v.reason, v.text, t=v.t))
            case voice_ev.SpeakingStarted():
                c.line_started(v.turn, v.character, v.t, v.frame)
            case voice_ev.SpeakingDone():
                c.line_done(v.turn, v.character, v.t, v.frame)
            case voice_ev.SpeakingInterrupted():
                c.line_interrupted(v.turn, v.character, v.words_spoken, v.t, v.frame)
            case voice_ev.SpeakingLevel():
                self.stage.speaking[v.character] = v.level
                if v.viseme:
                    self.stage.visemes[v.character] = v.viseme

    def _drain_brain(self) -> None:
        """Everything the brain thread produced since we last looked; never blocks."""
        while True:
            try:
                w = self._out.get_nowait()
            except queue.Empty:
                return
            self.conversation.on_brain(w)
            if isinstance(w, ev.ReplyDone) and not w.interrupted:
                self.stage.gesture(w.character, w.emotion)

    def _play_cue(self, cue: str) -> None:
        try:
            self.mixer.play_cue(cue)
        except KeyError as exc:  # a missing cue is not worth a crash; the scene validator names it
            self.transcript.emit(ev.WorkerFailed("mixer", f"sound cue {cue}: {exc}"))

    # -- results ---------------------------------------------------------------------------
    def frame_times(self) -> tuple[list[float], list[float]]:
        """(idle, busy) frame times in ms. With a display that times whole frames (begin to end,
        GL finished) those are used; otherwise the time of ``tick`` alone."""
        timings = getattr(self.display, "timings", None)
        if not timings:
            return self.frame_ms_idle, self.frame_ms_busy
        idle, busy = [], []
        for timing, was_busy in zip(timings, self.frame_busy, strict=False):
            (busy if was_busy else idle).append(timing.wall_ms)
        return idle, busy

    def mix(self) -> np.ndarray:
        """(n, 2) float32 at 48 kHz: everything the player heard this session."""
        return self.voice.mix()
