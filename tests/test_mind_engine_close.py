"""Loading the llama.cpp engine and closing it at once must not hang.

Before ``LlamaCppEngine._wait_until_listening``, destroying the server before its HTTP thread had
entered its listen loop blocked for ever in ``xllamacpp::Server::~Server`` (it joins that thread,
and cpp-httplib ignores a stop() that comes before listen()); a CI run froze in
``test_mind_gguf_merge`` on 2026-12-01. Run in a subprocess with a deadline, so a regression
fails here instead of freezing the suite.
"""

import subprocess
import sys

PROGRAM = """
from xrstory.mind.defaults import default_llm_path
from xrstory.mind.engine_llamacpp import LlamaCppEngine
for _ in range(3):
    with LlamaCppEngine(default_llm_path(), slots=1, context_tokens=256):
        pass
print("closed")
"""


def test_an_engine_loaded_and_closed_at_once_does_not_hang():
    try:
        r = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=90)
    except subprocess.TimeoutExpired:
        raise AssertionError("LlamaCppEngine hung in close() after a load with no request") from None
    assert r.returncode == 0 and "closed" in r.stdout, r.stderr[-2000:]
