"""Benchmarks of the whole runtime: ``xrstory bench [--json] [--quick]``.

Parts (each in a child process with a time budget, see ``run.py``): the language model (our
decode vs transformers ``generate`` vs llama.cpp, first-token times, grammar overhead), voice
(ASR real-time factor, TTS first audio), voice-to-voice and frame times from a real-time
scripted playthrough (``benchmarks/voice_to_voice.play``), and the renderer's per-frame split.
The per-layer measuring lives in each layer's ``bench.py``; this package runs them, assembles
one JSON document with stable keys (``figures.py``), prints a table and appends
``benchmarks/RESULTS.md``.

    xrstory bench --quick          # under 2 minutes: every figure, fewer repeats
    xrstory bench --json           # full run, JSON on stdout
"""

from xrstory.bench.figures import assemble, missing_figures, required_figures
from xrstory.bench.options import BenchOptions, Targets
from xrstory.bench.results_md import append_results, markdown_section
from xrstory.bench.run import run_bench

__all__ = ["BenchOptions", "Targets", "append_results", "assemble", "markdown_section", "missing_figures",
           "required_figures", "run_bench"]
