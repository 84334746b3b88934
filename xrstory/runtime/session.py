"""The session: one story, its workers, and the frame loop that ties them together.

Each frame (headless: one 32 ms chunk of audio time; paced to the wall clock by default):
  1. the microphone chunk (player audio + the room's echo of our own output) goes to the ear:
     VAD inline (~1 ms), Whisper on the ear's worker thread;
  2. events from the ear and the brain/speech workers are drained (never waited for): a heard
     line becomes a turn for the brain; a committed reply's triggers go through ``Story.apply``;
  3. the mixer renders this frame's audio (characters' voices placed in space, cues, ambience);
  4. the renderer animates toward the story state and draws the views;
  5. the head pose feeds the gaze tracker (a ray test); every few seconds and before each turn
     the dwell goes to the director on the brain worker's thread (``gaze_feed``);
  6. the player's silence goes to the director's pacing clock every second (``silence_feed``);
     a nudge it decides on becomes a nudge turn once nothing else is going on.
The director lives on the brain thread and writes only its own state dict; copies of it reach
``story.state.director`` through the out-queue (see ``director.Director``), so the frame loop's
copies and saves of the story never race the director.
Player speech while a character talks stops that character (barge-in); the interruption is
noted in the conversation the model sees next.

Run it through ``xrstory play`` (live) or ``xrstory run`` (scripted playthroughs).
"""

from __future__ import annotations

import copy
import queue
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np

from xrstory.playthrough.results import Capture
from xrstory.runtime.config import SessionConfig
from xrstory.runtime.gaze_feed import GazeFeed
from xrstory.runtime.silence_feed import SilenceFeed
from xrstory.runtime.turn_flow import TurnFlow
from xrstory.runtime.turns import TurnLedger
from xrstory.runtime.voice_events import VoiceEvents
from xrstory.runtime.worker_events import WorkerEvents
from xrstory.runtime.workers import BrainWorker, SpeechWorker, yield_to_frame_loop
from xrstory.story.state import Story, StoryState

EAR_RATE = 16_000
CHUNK = 512  # samples at 16 kHz per frame: 32 ms, the VAD's window
MIX_RATE = 48_000
MIX_CHUNK = CHUNK * MIX_RATE // EAR_RATE  # 1536 samples at 48 kHz per frame


def whisper_prompt(scene) -> str:
    """The words Whisper should expect in this scene: it spells names right and hears the story's
    verbs ("fetch the oil", not "catch the oil") when it is told them up front."""
    names = [c.name for c in scene.characters] + list(scene.scene.speech_hints)
    actions = [t.id.replace("_", " ") for t in scene.triggers]
    things = [p.name for p in scene.props if p.interactive and p.name]
    return f"{scene.scene.title}. {', '.join(names)}. {', '.join(actions)}. {', '.join(things)}."


class Session(TurnFlow, VoiceEvents, WorkerEvents):
    """Wires voice -> director -> mind -> TTS/mixer -> story -> render on a display's frame loop.

    The turn (``turn_flow``) and the handling of voice (``voice_events``) and worker events
    (``worker_events``) live in their own modules as mixins; this class owns the state and the frame."""

    def __init__(self, config: SessionConfig, components, scene, state: StoryState | None = None,
                 display=None, on_event: Callable[[dict], None] | None = None, capture_dir: Path | None = None):
        from xrstory.mind.memory import MemoryStore
        from xrstory.mind.mind import CharacterMind, MindConfig
        from xrstory.mind.moderation import Moderator
        from xrstory.voice.cues import load_cue  # noqa: F401  (fail early if cues are missing)
        from xrstory.voice.ear import Ear
        from xrstory.voice.echo import AcousticPath, AcousticPathConfig, EchoCanceller
        from xrstory.voice.mixer import Mixer

        self.config = config
        self.components = components
        self.scene = scene
        self.story = Story(scene, state)
        self.display = display
        self.on_event = on_event or (lambda e: None)
        self.capture_dir = capture_dir
        self.out: queue.Queue = queue.Queue()  # worker events -> frame loop
        self.mixer = Mixer(ambient_gain=0.04)
        if hasattr(components.asr, "config"):
            from dataclasses import replace

            components.asr.config = replace(components.asr.config, initial_prompt=whisper_prompt(scene))
        self.ear = Ear(components.asr, components.vad_model, echo_canceller=EchoCanceller())
        self.room = AcousticPath(AcousticPathConfig(gain=config.echo_gain))
        self.moderator = Moderator.for_scene(scene.folder)
        self.memory = (MemoryStore.load_from(self.story.state, components.embedder)
                       if components.embedder is not None else None)
        self.director = self._make_director()
        mind_cfg = MindConfig(max_new_tokens=config.max_new_tokens)
        if config.remote_url:
            from xrstory.mind.remote import RemoteConfig, RemoteMind

            self.mind = RemoteMind(RemoteConfig(base_url=config.remote_url), scene)
        else:
            self.mind = CharacterMind(components.language_model, scene, mind_cfg)
        self.speech = SpeechWorker(components.tts, self.mixer, scene, self.out)
        self.brain = BrainWorker(self.mind, scene, self.speech, self.out, memory=self.memory,
                                 director=self.director, moderator=self.moderator)
        self.gaze = GazeFeed(scene, self.brain, self.director)  # head pose -> dwell -> director (brain thread)
        self.silence = SilenceFeed(self.brain)  # quiet seconds -> director.on_time (brain thread)
        self._pending_nudge = None  # workers.NudgeDue waiting for the session to be idle
        self.ledger = TurnLedger()
        self.events: list[dict] = []
        self.captures: list[Capture] = []
        self.frame_ms_idle: list[float] = []
        self.frame_ms_busy: list[float] = []
        self.frame_busy: list[bool] = []  # per frame: were workers busy (for the display's own timings)
        self.audio_frame = 0  # 16 kHz samples since start
        self._audio_debt = 0.0  # samples of audio time owed to the frames so far
        self.time = 0.0  # scene seconds
        self._mic: deque[np.ndarray] = deque()  # pending player audio chunks (16 kHz)
        self._script_line: tuple[str, int] = ("", 0)  # the scripted line being spoken (text, step line)
        self._reference16 = np.zeros(CHUNK, np.float32)
        self._mix_chunks: list[np.ndarray] = []
        self._next_turn = 1
        self._last_speaker: str | None = None
        self._speaking: dict[str, float] = {}
        self._subtitles: dict[str, str] = {}
        self._subtitle_until: dict[str, float] = {}
        self._active_turn: int | None = None  # turn whose reply is being generated or spoken
        self._capture_next: list[str] = []
        self._t0 = time.monotonic()
        self.renderer = None

    def _make_director(self):
        from xrstory.director import Director, ProfileConfig, ProfileStore

        # its own state dict, seeded from the story (a resumed save's counters carry on), never
        # shared with the story: the brain thread writes it, the frame loop gets copies
        pacing, state = self.config.pacing, copy.deepcopy(self.story.state.director)
        if self.config.player_id is None:
            return Director(self.story, pacing=pacing, state=state)
        cfg = ProfileConfig(data_dir=self.config.data_dir) if self.config.data_dir else ProfileConfig()
        self._profile = ProfileStore(cfg)
        return Director(self.story, self._profile, self.config.player_id, pacing=pacing, state=state)

    # -- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> Session:
        self.speech.start()
        self.brain.start()
        self.ear.start()
        for thread in (self.speech.thread, self.brain.thread, self.ear.thread):
            yield_to_frame_loop(thread, self.config.worker_nice)
        if self.display is not None and self.renderer is None:
            from xrstory.render.renderer import SceneRenderer

            root = Path(__file__).resolve().parents[2]
            self.renderer = SceneRenderer(self.display.ctx, self.scene, shaders_dir=root / "shaders",
                                          assets_dir=root / "assets")
            self.renderer.update(self.story.state, 0.0, snap=True)
        return self

    def __exit__(self, *exc) -> None:
        self.brain.close()
        self.speech.close()
        self.ear.close()
        if getattr(self, "_profile", None) is not None:
            self._profile.close()

    # -- inputs ------------------------------------------------------------------------
    def queue_player_audio(self, audio16: np.ndarray, text: str = "", step_line: int = 0) -> None:
        """Player speech (16 kHz mono) that enters the microphone from the next frame on."""
        for i in range(0, len(audio16), CHUNK):
            part = audio16[i:i + CHUNK]
            if len(part) < CHUNK:
                part = np.pad(part, (0, CHUNK - len(part)))
            self._mic.append(part.astype(np.float32))
        self._script_line = (text, step_line)

    def queue_microphone(self, chunk16: np.ndarray) -> None:
        """One live microphone chunk: (CHUNK,) float32 at 16 kHz; safe from the microphone's thread."""
        self._mic.append(chunk16)

    def player_says_text(self, text: str, step_line: int = 0) -> int:
        """The text-only path: the line goes straight to the director and the mind."""
        t = time.monotonic()
        return self._start_turn(text, text, step_line, spoken=False, t_speech_end=None, t_heard=t)

    @property
    def busy(self) -> bool:
        """Any worker doing something, or speech pending/playing."""
        return (self.brain.busy or self.speech.busy or self.mixer.busy or bool(self._mic)
                or self.ear.segmenter.in_speech or self.ear.pending > 0)

    @property
    def hearing(self) -> bool:
        """Player audio still on its way: queued, inside an open speech segment, or in Whisper."""
        return bool(self._mic) or self.ear.segmenter.in_speech or self.ear.pending > 0

    @property
    def speaking(self) -> bool:
        return bool(self.mixer.speaking)

    # -- the frame -----------------------------------------------------------------------
    def tick(self, frame) -> None:
        """One frame: audio in, events, audio out, render. Never waits on a worker.

        Audio advances in 32 ms chunks by the frame's own time step (a 31.25 fps headless frame
        is exactly one chunk; a 90 Hz headset frame owes a chunk about every third frame)."""
        t_start = time.perf_counter()
        busy = self.busy
        dt = CHUNK / EAR_RATE if frame is None or not frame.dt and frame.index == 0 else frame.dt
        self._audio_debt += dt * EAR_RATE + 1e-6  # float steps of 32 ms must not lose a chunk
        while self._audio_debt >= CHUNK:
            self._audio_debt -= CHUNK
            self._audio_chunk()
        self._drain()
        for c in list(self._speaking):
            if c not in self.mixer.speaking:
                self._speaking[c] = 0.0
        for c, until in list(self._subtitle_until.items()):
            if self.time > until and c not in self.mixer.speaking:
                self._subtitles.pop(c, None)
                self._subtitle_until.pop(c, None)
        # the picture
        if self.renderer is not None and frame is not None:
            self.renderer.update(self.story.state, frame.dt, speaking=self._speaking, subtitles=self._subtitles,
                                 player_position=frame.head.position)
            if frame.should_render:
                self.renderer.draw(frame.views, frame.targets, ar_mode=getattr(self.display, "blend_mode", "opaque"))
            for event in frame.input_events:
                if getattr(event, "kind", None) is not None and event.kind.value == "select" and event.aim is not None:
                    target = self.renderer.pick(event.aim.position, event.aim.forward(), interactive_only=True)
                    if target:
                        self.press(target)
        if frame is not None:
            self.gaze.update(frame.head.position, frame.head.orientation, frame.dt)
        self._pace(dt)
        self.story.state.time = self.time
        ms = (time.perf_counter() - t_start) * 1000.0
        (self.frame_ms_busy if busy else self.frame_ms_idle).append(ms)
        self.frame_busy.append(busy)
        if self._capture_next and self.display is not None and self.capture_dir is not None and frame is not None:
            label = self._capture_next.pop(0)
            path = self.capture_dir / f"frame_{len(self.captures):03d}.png"
            self.display.capture(path)
            self.captures.append(Capture(self.time, label, str(path)))
            for rec in self.ledger.ordered():
                if label.startswith(f"reply {rec.turn} ") and rec.capture is None:
                    rec.capture = str(path)

    def _audio_chunk(self) -> None:
        """32 ms of audio: microphone in (player + the room's echo of our output), mixer out."""
        mic = self._mic.popleft() if self._mic else np.zeros(CHUNK, np.float32)
        mic = mic + self.room.process(self._reference16)
        for v in self.ear.feed(mic, self.audio_frame, reference=self._reference16):
            if type(v).__name__ == "SpeechStarted":
                self._handle_voice(v)  # barge-in reacts within this chunk
        self._drain()
        stereo, vevents = self.mixer.render(MIX_CHUNK, self.audio_frame)
        for v in vevents:
            self._handle_voice(v)
        mono = stereo.mean(axis=1)
        self._reference16 = mono.reshape(-1, 3).mean(axis=1).astype(np.float32)  # 48k -> 16k (box filter)
        if self.config.keep_audio:
            self._mix_chunks.append(stereo)
        self.audio_frame += CHUNK
        self.time += CHUNK / EAR_RATE

    def _drain(self) -> None:
        """Everything the ear and the workers produced since we last looked; never blocks."""
        while True:
            try:
                v = self.ear.events.get_nowait()
            except queue.Empty:
                break
            if type(v).__name__ != "SpeechStarted":
                self._handle_voice(v)
        while True:
            try:
                w = self.out.get_nowait()
            except queue.Empty:
                break
            self._handle_worker(w)

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
        return np.concatenate(self._mix_chunks) if self._mix_chunks else np.zeros((0, 2), np.float32)
