"""Speaking with real audio: espeak-ng voices per character, sentence streaming, the spatial
mixer (a character on the left is louder and earlier in the left channel), cues, and `xrstory say`."""

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from xrstory.cli import app
from xrstory.voice.cues import CUES, load_cue
from xrstory.voice.events import SpeakingDone, SpeakingLevel, SpeakingStarted
from xrstory.voice.mixer import Mixer
from xrstory.voice.spatial import Listener, ear_gains
from xrstory.voice.tts import EspeakTTS, VoiceSettings, split_sentences

MAREN = VoiceSettings("en-gb", 150, 30)
TOBIAS = VoiceSettings("en-us", 185, 60)


@pytest.fixture(scope="module")
def tts():
    with EspeakTTS() as t:
        yield t


def test_distinct_voices_with_word_and_viseme_timings(tts):
    a = tts.synthesize("Aye, friend. The lamp first.", MAREN)
    b = tts.synthesize("Aye, friend. The lamp first.", TOBIAS)
    assert a.rate == b.rate and a.seconds > 1.0
    assert b.seconds < a.seconds  # Tobias speaks faster (185 vs 150 wpm)
    assert [w.text for w in a.words][:2] == ["Aye,", "friend."]
    assert all(x.start_s <= y.start_s for x, y in zip(a.words, a.words[1:], strict=False))
    assert {"PP", "aa"} <= {v.text for v in a.visemes}  # "lamp": l-a-m-p


def test_sentences_stream_first_sentence_before_the_rest(tts):
    assert split_sentences('Aye. The lamp! Go? "Yes." Now') == ["Aye.", "The lamp!", "Go?", '"Yes."', "Now"]


def test_character_on_the_left_is_louder_and_earlier_in_the_left_channel(tts):
    spoken = tts.synthesize("Over here, friend.", MAREN)
    mixer = Mixer(listener=Listener((0.0, 1.6, 0.0)))
    line = mixer.add_line("maren", spoken.text, (-2.0, 1.6, -0.5))  # left of the listener
    mixer.append(line, spoken)
    mixer.finish(line)
    chunks, events = [], []
    while mixer.busy:
        out, ev = mixer.render(1536)
        chunks.append(out)
        events += ev
    stereo = np.concatenate(chunks)  # (n, 2) at 48 kHz
    left, right = stereo[:, 0], stereo[:, 1]
    assert np.sqrt(np.mean(left**2)) > 1.5 * np.sqrt(np.mean(right**2))
    corr = np.correlate(left[:48000], right[:48000 + 64], mode="valid")  # lags 0..64
    lag = int(np.argmax(corr))  # right delayed by `lag` samples relative to left
    assert 10 <= lag <= 40, lag  # ~0.5 ms ITD at 48 kHz for ~76 degrees azimuth
    kinds = [type(e) for e in events]
    assert kinds[0] is SpeakingStarted and kinds[-1] is SpeakingDone and SpeakingLevel in kinds
    g = ear_gains((2.0, 1.6, -0.5), Listener())  # mirror image
    assert g.right > g.left and g.left_delay_s > 0 == g.right_delay_s


def test_every_scene_cue_exists_and_is_audible():
    for name in ("crackle", "pour", "creak", "thud", "whoosh", "static", "flare", "horn", "bell"):
        assert name in CUES
        clip = load_cue(name, 48_000)
        assert 0.3 < len(clip) / 48_000 < 4 and 0.05 < np.abs(clip).max() <= 0.9
    with pytest.raises(KeyError, match="unknown sound cue 'kazoo'"):
        load_cue("kazoo", 48_000)


def test_say_cli_writes_spatialised_stereo(tmp_path):
    out = tmp_path / "maren.wav"
    r = CliRunner().invoke(app, ["say", "scenes/lighthouse", "maren", "Aye, friend. The lamp first.", "--out", str(out)])
    assert r.exit_code == 0, r.output
    audio, rate = sf.read(out)
    assert rate == 48_000 and audio.shape[1] == 2 and audio.shape[0] > rate
    assert np.sqrt(np.mean(audio[:, 0] ** 2)) > np.sqrt(np.mean(audio[:, 1] ** 2))  # Maren stands left
    bad = CliRunner().invoke(app, ["say", "scenes/lighthouse", "nobody", "x", "--out", str(out)])
    assert bad.exit_code == 2 and "nobody" in bad.output
