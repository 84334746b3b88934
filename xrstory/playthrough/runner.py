"""Run a playthrough script through a real headless session and collect the result.

The script drives the session from inside the frame loop: ``_drive`` is a generator resumed
once per frame, so waiting for a reply is just "yield until the turn is complete" — the
frame loop keeps rendering, listening and mixing meanwhile. The display, the session and the
loop are the ones ``xrstory play`` uses (``runtime.launch``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

from xrstory.playthrough.console import ExpectationFailed
from xrstory.playthrough.expect import check_expectation
from xrstory.playthrough.results import Failure, PlaythroughResult
from xrstory.playthrough.script import Playthrough, Step
from xrstory.runtime import events as ev
from xrstory.runtime.config import SessionConfig
from xrstory.runtime.launch import drive, open_display
from xrstory.story import load_scene, load_state
from xrstory.voice.events import EAR_RATE
from xrstory.voice.mixer import MIX_RATE


class PlaythroughRunner:
    """Runs scripts on shared, already loaded components (model, Whisper, VAD, TTS, embedder)."""

    def __init__(self, components, config: SessionConfig, report_dir: Path | None = None,
                 on_event: Callable[[ev.Event, float], None] | None = None):
        self.components = components
        self.config = config
        self.report_dir = report_dir
        self.on_event = on_event

    def _player_audio(self, scene, text: str) -> np.ndarray:
        from xrstory.voice.audio import resample
        from xrstory.voice.tts import VoiceSettings

        spoken = self.components.tts.synthesize(text, VoiceSettings.of(scene.scene.player_voice))
        audio = resample(spoken.audio, spoken.rate, EAR_RATE)
        pad = np.zeros(int(0.25 * EAR_RATE), np.float32)
        return np.concatenate([pad, audio.astype(np.float32), pad])

    def run(self, pt: Playthrough) -> PlaythroughResult:
        from xrstory.runtime.session import Session

        t0 = time.perf_counter()
        config = replace(self.config, scene_dir=pt.scene_dir, display="headless")
        scene = load_scene(config.scene_dir)
        state = None
        for step in pt.steps:
            if step.kind == "start":
                state = load_state(step.args["save"])
            elif step.kind == "seed":
                config = replace(config, seed=step.args["seed"])
        # the player's lines are synthesised before the loop starts: no TTS inside a frame
        audio = {}
        for step in pt.steps:
            if step.kind in ("say", "interrupt"):
                audio[step.line] = self._player_audio(scene, step.args["text"])
            elif step.kind == "audio":
                from xrstory.voice.audio import read_audio

                audio[step.line] = read_audio(step.args["file"], EAR_RATE)
        out = (self.report_dir / pt.name) if self.report_dir else None
        if out:
            out.mkdir(parents=True, exist_ok=True)
        result = PlaythroughResult(pt.name, pt.title, str(pt.path), str(pt.scene_dir))
        display = open_display(config, scene)
        try:
            with Session(config, self.components, scene, state, display=display, on_event=self.on_event,
                         capture_dir=out) as session:
                driver = self._drive(pt, session, display, audio, result)
                drive(display, session, lambda frame: next(driver, True) is True)
                result.turns = session.ledger.ordered()
                result.events = session.events
                result.frame_ms_idle, result.frame_ms_busy = session.frame_times()
                result.captures = session.captures
                result.ended = session.story.state.ended
                if out and config.keep_audio:
                    from xrstory.voice.audio import write_wav

                    result.audio_path = str(write_wav(out / "session.wav", session.mix(), MIX_RATE))
                if out:
                    from xrstory.story import save_state

                    save_state(session.story.state, out / "final_state.json")
        finally:
            display.__exit__(None, None, None)
        result.seconds = time.perf_counter() - t0
        if out:
            from xrstory.playthrough.report import write_report

            write_report(result, out)
        return result

    # -- the script, one frame at a time -------------------------------------------------------
    def _drive(self, pt: Playthrough, session, display, audio: dict, result: PlaythroughResult) -> Iterator[None]:
        steps = pt.steps
        for i, step in enumerate(steps):
            nxt = steps[i + 1] if i + 1 < len(steps) else None
            interrupt_next = nxt is not None and nxt.kind == "interrupt"
            if step.kind in ("seed", "start"):
                continue
            if step.kind == "look":
                yield from self._look(session, display, step.args.get("target"), step.args.get("point"))
            elif step.kind in ("say", "type", "audio"):
                if step.args.get("to"):
                    yield from self._look(session, display, step.args["to"], None)
                before = session.ledger.latest()
                if step.kind == "type":
                    session.player_says_text(step.args["text"], step.line)
                else:
                    session.queue_player_audio(audio[step.line], step.args.get("text", ""), step.line)
                yield from self._await_turn(session, step, before, result, until_speaking=interrupt_next)
            elif step.kind == "interrupt":
                deadline = time.monotonic() + self.config.max_turn_s
                while not session.speaking:
                    if time.monotonic() > deadline:
                        result.failures.append(Failure(step.line, step.text, "a character speaking to interrupt",
                                                       "nobody spoke"))
                        break
                    yield
                t_start = session.time
                while session.time - t_start < step.args["after_s"]:
                    yield
                before = session.ledger.latest()
                session.queue_player_audio(audio[step.line], step.args["text"], step.line)
                yield from self._await_turn(session, step, before, result, until_speaking=interrupt_next)
            elif step.kind == "press":
                yield from self._look(session, display, step.args["target"], None)
                display.press()
                for _ in range(3):  # the press is delivered with a coming frame; let it land
                    yield
                while session.mouth.busy or session.mixer.busy:
                    yield
            elif step.kind == "wait":
                t_end = session.time + step.args["seconds"]
                while session.time < t_end:
                    yield
            elif step.kind == "expect":
                failure = check_expectation(step, session.story, session.ledger.latest(), session.ledger.ordered())
                if failure is not None:
                    result.failures.append(failure)
                    session.transcript.emit(ExpectationFailed(step.line, step.text, failure.expected, failure.actual))

    def _look(self, session, display, target: str | None, point) -> Iterator[None]:
        if target is not None:
            try:
                point = session.stage.renderer.anchor(target)
            except KeyError:
                raise ValueError(f"look: unknown prop or character '{target}'") from None
        display.look_at(tuple(float(v) for v in point), 0.0)
        yield
        yield

    def _await_turn(self, session, step: Step, before, result: PlaythroughResult,
                    until_speaking: bool = False) -> Iterator[None]:
        """Yield frames until this step's turn is complete (reply committed and spoken), or until
        the character starts speaking when the next step interrupts it."""
        deadline = time.monotonic() + self.config.max_turn_s
        quiet_since = None
        while True:
            latest = session.ledger.latest()
            turn = latest if latest is not None and latest is not before else None
            if turn is not None:
                if until_speaking and (session.speaking or turn.t_reply_done):
                    return
                if turn.t_reply_done and not session.busy:
                    return
            elif not session.hearing:
                # the utterance went all the way through VAD and ASR and made no turn: give the
                # queues 1.5 s of scene time to deliver, then call it unheard
                quiet_since = session.time if quiet_since is None else quiet_since
                if session.time - quiet_since > 1.5:
                    rejected = [e for e in session.transcript.items if isinstance(e, ev.SpeechRejected)]
                    why = f"rejected: {rejected[-1].reason}" if rejected else "no speech detected"
                    result.failures.append(Failure(step.line, step.text, "the player's line heard", why))
                    return
            else:
                quiet_since = None
            if time.monotonic() > deadline:
                result.failures.append(Failure(step.line, step.text, f"a reply within {self.config.max_turn_s:.0f} s",
                                               "no reply (timeout)"))
                return
            yield
