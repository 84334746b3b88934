"""Addressing by the vocative (issue 20, item 7): ``director.addressing.addressee``.

On main the first character whose name appeared anywhere in the line was addressed, as a
substring: "Tobias, ask Maren to light the stove" went to Maren and "tobiasaurus" to Tobias.
The lighthouse scene's own characters are used, so a renamed character changes the test.
"""

import pytest
from helpers import lighthouse_fixture

from xrstory.director.addressing import addressee

scene = lighthouse_fixture()


@pytest.fixture(scope="module")
def cast(scene):
    return [(c.id, c.name) for c in scene.characters]


@pytest.mark.parametrize("line, looked, last, expected", [
    ("Tobias, ask Maren to light the stove", "character.maren", None, "tobias"),  # main: maren
    ("Can you light the stove for Tobias, Maren?", "character.tobias", None, "maren"),  # main: tobias
    ("Hey Tobias, tell Maren the oil is here", None, None, "tobias"),
    ("okay maren what does tobias think", None, None, "maren"),
    ("I heard tobiasaurus roars at night", "character.maren", "maren", "maren"),  # main: tobias
    ("The MAREN's lamp is out", None, "tobias", "maren"),
    ("Could you fetch the oil?", "character.tobias", "maren", "tobias"),
    ("Could you fetch the oil?", "prop.stove", "maren", "maren"),
    ("Could you fetch the oil?", None, None, "maren"),
    ("Could you fetch the oil?", "character.nobody", None, "maren"),
])
def test_vocative_then_named_then_gaze_then_last(cast, line, looked, last, expected):
    assert [c for c, _ in cast][:2] == ["maren", "tobias"]
    assert addressee(line, cast, looked, last) == expected


def test_a_scene_without_characters_is_a_clear_error():
    with pytest.raises(ValueError, match="no characters"):
        addressee("hello", [])
