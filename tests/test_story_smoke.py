"""The demo scene loads and its story can be played to its ending by the rules alone."""

from xrstory.story import Story, load_scene


def test_demo_scene_arc_reaches_ending():
    story = Story(load_scene("scenes/lighthouse"))
    assert story.apply("light_lamp", by="maren").reason.startswith("'light_lamp' is not allowed")
    for trig, by in [("light_stove", "maren"), ("open_cellar", "player"), ("fetch_oil", "tobias"),
                     ("light_lamp", "maren"), ("radio_ship", "tobias"), ("guide_ship_home", "maren")]:
        r = story.apply(trig, by=by)
        assert r.fired, (trig, r.reason)
    assert story.state.beat == "dawn"
    assert story.state.ended
