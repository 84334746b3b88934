"""Loading the llama.cpp engine and closing it at once must not hang.

~Server joins threads that must first have seen the stop, and two of them can miss it:
cpp-httplib ignores a stop() that comes before listen() (a CI run froze in
``test_mind_gguf_merge`` on 2026-12-01), and llama.cpp's ``start_loop`` sets ``running = true``
itself, undoing a ``terminate()`` that came before it (this test timed out in CI on 2026-12-02).
``LlamaCppEngine._wait_until_listening`` waits for both. The window is microseconds wide, so the
test loads and closes several times while two busy processes compete for the cores: the thread
that would start the loop is then often descheduled in it. Without the /slots wait the raw server
hung at the 2nd and the 9th load of two such runs here; with it, 50 loads closed. Run in a
subprocess with a deadline, so a regression fails here instead of freezing the suite.
"""

import subprocess
import sys

PROGRAM = """
from xrstory.mind.defaults import default_llm_path
from xrstory.mind.engine_llamacpp import LlamaCppEngine
for _ in range(6):
    with LlamaCppEngine(default_llm_path(), threads=1, slots=1, context_tokens=256):
        pass
print("closed")
"""


def test_an_engine_loaded_and_closed_at_once_does_not_hang():
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        r = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=150)
    except subprocess.TimeoutExpired:
        raise AssertionError("LlamaCppEngine hung in close() after a load with no request") from None
    finally:
        for p in busy:
            p.kill()
            p.wait()
    assert r.returncode == 0 and "closed" in r.stdout, r.stderr[-2000:]
