"""``xrstory ask SCENE_DIR CHARACTER TEXT``: one turn with a character, for people, scripts and CI.

Loads the scene (and a save with --state), loads the model (the scene's LoRA adapter when its
folder exists, or --adapter), asks, applies the reply's triggers through ``Story.apply`` (so
refusals are real), and prints the reply, or with --json:

    {"character", "reply": {"say", "emotion", "triggers", "fallback", "fallback_reason"},
     "sentences": [...], "allowed_triggers": [...], "fired": [...],
     "refused": [{"trigger", "reason"}], "beat_before", "beat_after",
     "timings_ms": {"first_token", "first_sentence", "total", "prefill", "model_load"},
     "tokens", "prompt_tokens", "cached_prompt_tokens", "prompt_dropped", "model": {...}}

Exit codes: 0 ok, 2 bad input (scene, character, save, a bad --engine; a model or adapter that
is missing, truncated, corrupt, made for another model, or a model without a chat template: the
message names the file), 3 this machine cannot run the model (no CUDA device, out of GPU memory)
or the engine failed to start. ``--engine`` picks the decoding engine (``mind.engine.choose_engine``;
the JSON says which and why).
Torch and transformers are imported inside the command, so ``xrstory --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer


def _fail(message: str, code: int = 2) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(code)


def _adapter_for(scene, cli_adapter: Path | None) -> tuple[Path | None, str]:
    """The adapter to load and a note about the choice: explicit > the scene's own > the general
    adapter > the base model (``runtime.adapter_choice``, as ``play`` and ``run`` choose)."""
    from xrstory.runtime.adapter_choice import choose_adapter

    try:
        choice = choose_adapter(scene, cli_adapter)
    except FileNotFoundError as exc:
        _fail(f"--adapter {cli_adapter}: {exc}")
    if choice.source == "base" and scene.scene.adapter:
        print(f"warning: {choice.note}", file=sys.stderr)
    return (Path(choice.path) if choice.path else None), choice.note


def ask(scene_dir: Annotated[Path, typer.Argument(help="scene folder (or scene.toml)")],
        character: Annotated[str, typer.Argument(help="character id, e.g. maren")],
        text: Annotated[str, typer.Argument(help="what the player says")],
        state: Annotated[Path | None, typer.Option("--state", help="a save (JSON) to start from")] = None,
        adapter: Annotated[Path | None, typer.Option("--adapter", help="LoRA adapter folder (PEFT)")] = None,
        model: Annotated[str | None, typer.Option("--model", help="HF id, model folder or .gguf (default SmolLM2-135M)")] = None,
        chat_template: Annotated[Path | None, typer.Option(
            "--chat-template", help="Jinja chat template file, for a model without one (e.g. a base GGUF)")] = None,
        max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", min=8, help="reply length limit")] = 120,
        out_state: Annotated[Path | None, typer.Option("--out-state", help="write the state after the turn here")] = None,
        engine: Annotated[str, typer.Option("--engine", help="auto (torch with CUDA, llama.cpp on a CPU), llamacpp, "
                                            "torch or remote")] = "auto",
        remote: Annotated[str | None, typer.Option("--remote", help="server URL for --engine remote")] = None,
        threads: Annotated[int | None, typer.Option("--threads", min=1, help="engine CPU threads")] = None,
        json_out: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False):
    """Ask one character one thing; apply its triggers; print the reply (or JSON)."""
    from xrstory.story import SaveError, SceneError, Story, load_scene, load_state, save_state

    try:
        scene = load_scene(scene_dir)
    except SceneError as exc:
        _fail("\n".join(str(i) for i in exc.issues))
    except FileNotFoundError as exc:
        _fail(str(exc))
    if character not in {c.id for c in scene.characters}:
        _fail(f"no character '{character}' in scene '{scene.scene.id}' "
              f"(characters: {', '.join(c.id for c in scene.characters)})")
    try:
        story = Story(scene, load_state(state) if state else None)
    except (SaveError, FileNotFoundError, ValueError, KeyError) as exc:
        _fail(f"--state {state}: {exc}")
    adapter_path, adapter_note = _adapter_for(scene, adapter)

    from xrstory.mind.engine import EngineError, EngineSpec, choose_engine, load_engine
    from xrstory.mind.loader import ModelEnvironmentError, ModelLoadError
    from xrstory.mind.mind import CharacterMind, MindConfig

    try:
        engine_name, engine_why = choose_engine(engine, model=model, remote_url=remote, adapter=adapter_path)
    except ValueError as exc:
        _fail(str(exc))
    try:
        lm = load_engine(EngineSpec(engine=engine_name, model=model, adapter=adapter_path, remote_url=remote,
                                    threads=threads, chat_template=chat_template), scene)
    except (ModelEnvironmentError, EngineError) as exc:  # the input is fine; this machine cannot run it
        _fail(str(exc), 3)
    except (FileNotFoundError, ModelLoadError) as exc:  # a bad file, folder or id: named in the message
        _fail(str(exc))
    with lm:
        mind = CharacterMind(lm, scene, MindConfig(max_new_tokens=max_new_tokens))
        history = story.state.conversation[-8:]
        beat_before = story.state.beat
        outcome = mind.ask(story, character, text, history=history)
    reply, timings = outcome.reply, outcome.timings
    fired, refused = [], []
    for trig in reply.triggers:
        result = story.apply(trig, by=character)
        if result.fired:
            fired.append(trig)
        else:
            refused.append({"trigger": trig, "reason": result.reason})
    story.note_utterance("player", text)
    story.note_utterance(character, reply.say)
    if out_state is not None:
        save_state(story.state, out_state)

    if not json_out:
        print(f"{scene.character(character).name} ({reply.emotion}): {reply.say}")
        for trig in fired:
            print(f"  fired: {trig}")
        for r in refused:
            print(f"  refused: {r['trigger']} ({r['reason']})")
        print(f"  first sentence {timings.first_sentence_ms:.0f} ms, total {timings.total_ms:.0f} ms, "
              f"{timings.tokens} tokens; {adapter_note}; engine {engine_name} ({engine_why})")
        return
    print(json.dumps({
        "character": character,
        "reply": {"say": reply.say, "emotion": reply.emotion, "triggers": list(reply.triggers),
                  "fallback": reply.fallback, "fallback_reason": reply.fallback_reason},
        "sentences": [s.text for s in outcome.sentences],
        "allowed_triggers": outcome.allowed_triggers,
        "fired": fired,
        "refused": refused,
        "beat_before": beat_before,
        "beat_after": story.state.beat,
        "timings_ms": {"first_token": round(timings.first_token_ms, 1),
                       "first_sentence": round(timings.first_sentence_ms, 1),
                       "total": round(timings.total_ms, 1), "prefill": round(timings.prefill_ms, 1),
                       "model_load": round(lm.load_ms, 1)},
        "tokens": timings.tokens,
        "prompt_tokens": timings.prompt_tokens,
        "cached_prompt_tokens": timings.cached_prompt_tokens,
        "prompt_dropped": timings.extra.get("prompt_dropped", []),
        "engine": {"name": engine_name, "why": engine_why},
        "model": {"source": lm.source, "adapter": str(adapter_path) if adapter_path else None,
                  "device": getattr(getattr(lm, "lm", None), "device", "cpu"),
                  "dtype": getattr(getattr(lm, "lm", None), "dtype", "gguf"),
                  "notes": list(lm.notes) + [adapter_note]},
    }, indent=2, ensure_ascii=False))
