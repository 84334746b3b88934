"""The demo scene rendered headless (EGL, llvmpipe), checked by its pixels.

Each test draws real frames of scenes/lighthouse and measures what changed: the lamp's region
after its trigger, the stereo parallax against what the eye separation predicts, text pixels
in the subtitle panel, the passthrough background in AR frames. A GL error check runs before
and after every test.
"""

from __future__ import annotations

import numpy as np
import pytest

from xrstory.render.renderer import SceneRenderer
from xrstory.render.view import Pose
from xrstory.story import Story, load_scene
from xrstory.xr.headless import HeadlessConfig, HeadlessDisplay

EYE = (320, 320)
LAMP_TRIGGERS = [("light_stove", "maren"), ("open_cellar", "player"), ("fetch_oil", "tobias"),
                 ("light_lamp", "maren")]


@pytest.fixture(scope="module")
def scene():
    return load_scene("scenes/lighthouse")


@pytest.fixture(scope="module")
def rig(scene, tmp_path_factory):
    """One stereo display and one renderer for the module (shader compile + font atlas once)."""
    vp = scene.viewpoint("player")
    cfg = HeadlessConfig(eye_size=EYE, stereo=True, start=Pose.look_at(vp.position, vp.look_at))
    with HeadlessDisplay(cfg) as display, SceneRenderer(display.ctx, scene) as renderer:
        yield display, renderer


@pytest.fixture(autouse=True)
def gl_errors_checked(rig):
    display, _ = rig
    assert display.ctx.error == "GL_NO_ERROR", "a GL error was pending before the test"
    yield
    assert display.ctx.error == "GL_NO_ERROR", "the test left a GL error"


def lamp_lit_story(scene) -> Story:
    story = Story(scene)
    for trig, by in LAMP_TRIGGERS:
        assert story.apply(trig, by).fired, trig
    return story


def render(display, renderer, state, ar_mode="opaque", speaking=None, subtitles=None, head=None):
    if head is not None:
        display.set_head(head)
    for frame in display.frames(max_frames=1):
        renderer.update(state, frame.dt, speaking=speaking, subtitles=subtitles, snap=True,
                        player_position=frame.head.position)
        renderer.draw(frame.views, frame.targets, ar_mode=ar_mode)
    return display.eye_images(), display.last_frame


def project(view, point, size) -> np.ndarray:
    """Pixel (x right, y down) of a world point in a view."""
    clip = view.fov.projection() @ view.view_matrix() @ np.append(np.asarray(point, np.float64), 1.0)
    ndc = clip[:3] / clip[3]
    return np.array([(ndc[0] + 1) / 2 * size[0], (1 - ndc[1]) / 2 * size[1]])


def luminance(img) -> np.ndarray:
    return img[..., :3].astype(np.float32) @ np.array([0.2126, 0.7152, 0.0722], np.float32)


def test_lamp_region_is_brighter_after_its_trigger(scene, rig):
    display, renderer = rig
    vp = scene.viewpoint("player")
    head = Pose.look_at(vp.position, vp.look_at)
    before, frame = render(display, renderer, Story(scene).state, head=head)
    after, _ = render(display, renderer, lamp_lit_story(scene).state, head=head)
    centre = project(frame.views[0], scene.prop("lamp").position, EYE)
    r = 12  # pixels: well inside the lamp's disc (0.45 m radius at ~4.7 m is ~15 px here)
    x, y = int(centre[0]), int(centre[1])
    lum_before = luminance(before[0][y - r:y + r, x - r:x + r]).mean()
    lum_after = luminance(after[0][y - r:y + r, x - r:x + r]).mean()
    assert lum_after > lum_before + 80, (lum_before, lum_after)
    # and the lit lamp lights the room: the whole frame is brighter too
    assert luminance(after[0]).mean() > luminance(before[0]).mean() + 10


def test_stereo_parallax_matches_eye_separation(scene, rig):
    display, renderer = rig
    story = lamp_lit_story(scene)
    lamp = np.asarray(scene.prop("lamp").position)
    head = Pose.look_at((0.0, 1.6, 0.0), (0.0, 2.0, -4.6))
    eyes, frame = render(display, renderer, story.state, head=head)
    xs = []
    for img, view in zip(eyes, frame.views, strict=True):
        c = project(view, lamp, EYE)
        x0, y0 = int(c[0]) - 30, int(c[1]) - 30
        win = luminance(img[y0:y0 + 60, x0:x0 + 60])
        mask = win > 0.97 * win.max()  # the saturated core of the lit lamp
        assert mask.sum() > 50
        xs.append(x0 + (np.nonzero(mask)[1].mean()) + 0.5)
    measured = xs[0] - xs[1]  # the left eye sees a near object further right
    # expected from the geometry alone: ipd * focal length (px) / depth (m)
    view = frame.views[0]
    focal_px = EYE[0] / (np.tan(view.fov.angle_right) - np.tan(view.fov.angle_left))
    depth = -(view.view_matrix() @ np.append(lamp, 1.0))[2]
    expected = display.config.ipd * focal_px / depth
    assert expected > 1.5
    assert measured == pytest.approx(expected, abs=0.35), (measured, expected)


def test_subtitle_region_contains_text_pixels(scene, rig):
    display, renderer = rig
    state = Story(scene).state
    anchor = renderer.model.head_anchor("maren")
    # stand 1.6 m from Maren, as a player talking to her would: an em is ~10 px at 320 px per eye
    head = Pose.look_at((-0.5, 1.7, -1.6), anchor + np.array([0.0, 0.15, 0.0]))
    plain, frame = render(display, renderer, state, head=head, speaking={"maren": 0.0})
    text, _ = render(display, renderer, state, head=head, speaking={"maren": 0.0},
                     subtitles={"maren": "Aye, friend. The lamp first."})
    c = project(frame.views[0], anchor, EYE)
    x, y = int(c[0]), int(c[1])
    region = (slice(max(y - 70, 0), y + 4), slice(max(x - 110, 0), x + 110))
    diff = np.abs(text[0][region][..., :3].astype(int) - plain[0][region][..., :3].astype(int)).max(-1)
    bright = luminance(text[0][region]) > 200  # the near-white glyph fill
    assert (bright & (diff > 60)).sum() > 40
    # the panel darkens what is behind it: dark pixels around the glyphs
    assert (luminance(text[0][region]) < 30).sum() > 200
    # nothing changed far from the panel
    far = np.abs(text[0][-60:].astype(int) - plain[0][-60:].astype(int)).max()
    assert far <= 2


def test_ar_frame_shows_background_where_there_is_no_geometry(scene, rig, tmp_path):
    display, renderer = rig
    yy, xx = np.mgrid[0:EYE[1], 0:EYE[0]]
    bg = np.stack([xx * 255 // EYE[0], yy * 255 // EYE[1], np.full_like(xx, 90)], -1).astype(np.uint8)
    display.background = bg
    display.blend_mode = "alpha_blend"
    try:
        vp = scene.viewpoint("player")
        eyes, frame = render(display, renderer, Story(scene).state, ar_mode="alpha_blend",
                             head=Pose.look_at(vp.position, vp.look_at))
        raw = eyes[0]
        out = display.image()[:, :EYE[0]]
        # top rows look over the back wall: no geometry, transparent, background unchanged
        assert raw[:10, :, 3].max() == 0
        assert np.abs(out[:10].astype(int) - bg[:10].astype(int)).max() <= 1
        # the chart table is opaque geometry: alpha 1 and not the background
        table = project(frame.views[0], (0.9, 0.5, -1.65), EYE).astype(int)
        assert raw[table[1], table[0], 3] == 255
        assert np.abs(out[table[1], table[0]].astype(int) - bg[table[1], table[0]].astype(int)).max() > 30
        # additive: black adds nothing, so the background shows through everywhere light is absent
        display.blend_mode = "additive"
        render(display, renderer, Story(scene).state, ar_mode="additive")
        add = display.image()[:, :EYE[0]]
        assert np.abs(add[:10].astype(int) - bg[:10].astype(int)).max() <= 1
        assert (add.astype(int) >= bg.astype(int) - 1).all()
    finally:
        display.background, display.blend_mode = None, "opaque"


def test_one_framebuffer_with_viewports_matches_one_per_eye(scene, rig):
    """The OpenXR path may hand one swapchain image with a viewport per eye."""
    import moderngl  # noqa: F401  (the test needs the real GL module)

    display, renderer = rig
    state = lamp_lit_story(scene).state
    eyes, frame = render(display, renderer, state)
    ctx = display.ctx
    color = ctx.texture((EYE[0] * 2, EYE[1]), 4)
    depth = ctx.depth_renderbuffer((EYE[0] * 2, EYE[1]))
    fbo = ctx.framebuffer([color], depth)
    try:
        renderer.draw(frame.views, [fbo])
        both = np.frombuffer(fbo.read(components=4), np.uint8).reshape(EYE[1], EYE[0] * 2, 4)[::-1]
        for i in range(2):
            half = both[:, i * EYE[0]:(i + 1) * EYE[0]].astype(int)
            assert np.abs(half - eyes[i].astype(int)).mean() < 0.5
    finally:
        for obj in (fbo, depth, color):
            obj.release()


def test_door_opens_over_time_and_speaker_turns_to_player(scene, rig):
    display, renderer = rig
    story = Story(scene)
    render(display, renderer, story.state)
    model = renderer.model
    door = next(s for s in model.props if s.prop_id == "cellar_door")
    assert story.apply("light_stove", "maren").fired and story.apply("open_cellar", "player").fired
    yaws = []
    for frame in display.frames(max_frames=40):  # 40 frames at 90 Hz = 0.44 s of a 1.2 s swing
        renderer.update(story.state, frame.dt, speaking={"tobias": 0.9}, player_position=frame.head.position)
        renderer.draw(frame.views, frame.targets)
        yaws.append(next(c for c in model.characters if c.character_id == "tobias").yaw)
    mid = float(door.animator.current.rotation_deg[1])
    assert 5.0 < mid < 95.0  # part way through the swing, not popped
    tobias = next(c for c in model.characters if c.character_id == "tobias")
    to_player = np.arctan2(0.0 - tobias.position[0], 0.0 - tobias.position[2])
    assert abs(yaws[-1] - to_player) < abs(np.radians(-25.0) - to_player)  # turned towards the player
    assert tobias.mouth > 0.5
    for frame in display.frames(max_frames=120):
        renderer.update(story.state, frame.dt, player_position=frame.head.position)
    assert float(door.animator.current.rotation_deg[1]) == pytest.approx(100.0)


def test_press_selects_what_the_gaze_hits(scene, rig):
    display, renderer = rig
    vp = scene.viewpoint("player")
    display.set_head(Pose.look_at(vp.position, vp.look_at))
    display.look_at(renderer.anchor("lamp"), seconds=0.2)
    display.press()
    hits = []
    for frame in display.frames(max_frames=40):
        for ev in frame.input_events:
            hits.append((frame.index, renderer.pick(ev.aim.position, ev.aim.forward(), interactive_only=True)))
        if hits:
            break
    assert hits and hits[0][1] == "lamp"
    assert hits[0][0] >= 18  # 0.2 s at 90 Hz: the press waits for the turn to finish
    assert display.timings[-1].cpu_ms > 0  # end of frame ran although the loop broke out


def test_bad_ar_mode_and_target_count_are_named(scene, rig):
    display, renderer = rig
    with pytest.raises(ValueError, match="ar_mode 'vr'"):
        renderer.draw(display.views(display.head), display.targets, ar_mode="vr")
    with pytest.raises(ValueError, match="2 views and 3 targets"):
        renderer.draw(display.views(display.head), display.targets + display.targets[:1])
