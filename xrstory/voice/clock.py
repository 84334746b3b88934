"""The audio clock's unit: time in the voice layer is counted in samples at the 16 kHz listening
rate (``events.EAR_RATE``) and advances in chunks of ``CHUNK`` samples (32 ms, Silero VAD's
window). ``voice.duplex.Duplex.frame`` is the clock; the caller decides how fast it steps
(headless: as fast as the CPU allows, or paced by the display's frame loop).
"""

from __future__ import annotations

CHUNK = 512  # samples at 16 kHz = 32 ms; Silero VAD's window size at this rate
