"""glTF animation and faces without GL: LINEAR / STEP / CUBICSPLINE sampling against their
formulas, cross-fades between clips, joint matrices, visemes onto morph weights, blinks, and
scene errors that name the file and field (an unknown clip, an unknown morph target).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from gltf_assets import arm, clips_model, morph_triangle, scene_folder

from xrstory.render.face import Face
from xrstory.render.gltf import load_model
from xrstory.render.mesh import MeshError
from xrstory.render.pose import ClipMixer, ModelPose, clip_tracks
from xrstory.render.scene_model import SceneModel
from xrstory.story import SceneError, load_scene

ROOT_ASSETS = "assets/characters"


def _model_with_clips(tmp_path):
    return load_model(clips_model(tmp_path / "clips.glb"))


def test_linear_step_and_cubic_sampling(tmp_path):
    m = _model_with_clips(tmp_path)
    lin, step, cubic = (clip_tracks(m, m.clips[k])[0] for k in ("lin", "step", "cubic"))
    assert lin.sample(0.5)[0] == pytest.approx([1, 0, 0])
    assert lin.sample(1.5)[0] == pytest.approx([2, 2, 0])
    assert lin.sample(9.0)[0] == pytest.approx([2, 4, 0])  # clamped past the end
    assert step.sample(0.99)[0] == pytest.approx([1, 1, 1]) and step.sample(1.0)[0] == pytest.approx([3, 3, 3])
    # Hermite with p0=0, m0=1*td, p1=4, m1=1*td (td = 2) at u = 0.5
    u, td = 0.5, 2.0
    want = (2 * u**3 - 3 * u**2 + 1) * 0 + (u**3 - 2 * u**2 + u) * td + (-2 * u**3 + 3 * u**2) * 4 + (u**3 - u**2) * td
    assert cubic.sample(1.0)[0][0] == pytest.approx(want)
    assert m.clips["lin"].duration == pytest.approx(2.0)
    # the baked samples of the cubic track agree with the exact evaluation between bake points
    for t in (0.1, 0.77, 1.33, 1.999):
        assert cubic.sample(t) == pytest.approx(cubic.exact(t), abs=1e-4)


def test_morph_weights_animated_by_a_clip_and_overridden_by_code(tmp_path):
    m = load_model(morph_triangle(tmp_path / "w.glb"))
    n = 0
    assert m.meshes[0].target_names == ["stretch", "other"]
    assert m.meshes[0].primitives[0].morph[0, 2, 0, :3] == pytest.approx([0, 0.5, 0])
    pose = ModelPose(m)
    pose.apply(clip_tracks(m, m.clips["pulse"]), 0.5)
    assert pose.weights[n] == pytest.approx([0.5, 0.125])
    face = Face({"stretch": [(n, 0)]}, {"aa": {"stretch": 1.0}}, None, seed="x")
    face.update(1.0, level=1.0, viseme="aa")
    face.apply(pose.weights)  # code sets the mouth over the clip's value
    assert pose.weights[n][0] == pytest.approx(1.0, abs=1e-3) and pose.weights[n][1] == pytest.approx(0.125)


def test_rotation_is_slerped_and_the_arm_bends_at_its_joint(tmp_path):
    m = load_model(arm(tmp_path / "arm.glb"))
    track = clip_tracks(m, m.clips["bend"])[0]
    assert track.baked is not None  # rotations are baked; the exact slerp and the baked rows agree
    for t in (0.013, 0.25, 0.377, 2.9):
        assert track.sample(t) == pytest.approx(track.exact(t), abs=1e-5)
    q = track.exact(0.25)[0]  # half way to 90 degrees about +Z
    assert q == pytest.approx([0, 0, math.sin(math.radians(22.5)), math.cos(math.radians(22.5))], abs=1e-5)
    pose = ModelPose(m)
    pose.apply(clip_tracks(m, m.clips["bend"]), 1.0)
    joints = pose.joint_matrices(0, pose.world())
    tip = joints[1] @ np.array([1.0, 1.0, 0.0, 1.0])  # the bar's end, bind space
    assert tip[:3] == pytest.approx([0.5, 1.5, 0.0], abs=1e-5)  # now straight above the elbow
    assert (joints[0] @ np.array([0.25, 1.0, 0, 1]))[:3] == pytest.approx([0.25, 1.0, 0.0])  # upper arm stays


def test_cross_fade_blends_from_the_playing_clip(tmp_path):
    m = _model_with_clips(tmp_path)
    mixer = ClipMixer(m, base=None, fade_s=0.4)
    pose = ModelPose(m)
    assert mixer.play("lin") and not mixer.play("no_such_clip")
    mixer.advance(0.2)  # half faded in, clip time 0.2 -> (0.4, 0, 0) at weight 0.5
    mixer.apply(pose)
    assert pose.t[0] == pytest.approx([0.2, 0, 0])
    mixer.advance(0.3)
    mixer.play("cubic")  # lin fades out while cubic fades in
    mixer.advance(0.2)
    assert [layer[0] for layer in mixer.layers] == ["lin", "cubic"]
    assert 0 < mixer.layers[0][2] < 1 and 0 < mixer.layers[1][2] < 1
    for _ in range(10):
        mixer.advance(0.1)
    assert "lin" not in [layer[0] for layer in mixer.layers]


def test_visemes_drive_the_mapped_morph_targets_and_blinks_come_and_go():
    targets = {"open": [(0, 0)], "round": [(0, 1)], "blink": [(0, 2)]}
    face = Face(targets, {"aa": {"open": 1.0}, "U": {"round": 0.8}, "rest": {}}, "blink", seed="maren")
    weights = {0: np.zeros(3, np.float32)}
    for _ in range(20):
        face.update(1 / 60, level=0.9, viseme="aa")
    face.apply(weights)
    assert weights[0][0] > 0.9 and weights[0][1] < 0.05
    for _ in range(20):
        face.update(1 / 60, level=0.9, viseme="U")
    face.apply(weights)
    assert weights[0][1] == pytest.approx(0.8, abs=0.05) and weights[0][0] < 0.05
    for _ in range(30):
        face.update(1 / 60, level=0.0, viseme="")
    face.apply(weights)
    assert weights[0][:2].max() < 0.02  # silence closes the mouth
    blinks = []
    for _ in range(600):  # 10 s
        face.update(1 / 60, 0.0, "")
        blinks.append(face.blink_weight)
    closed = np.array(blinks) > 0.9
    starts = np.count_nonzero(closed[1:] & ~closed[:-1])
    assert 2 <= starts <= 6  # every 2 to 5.5 s


def _scene_with(folder: Path, appearance: str):
    return load_scene(scene_folder(folder, Path(ROOT_ASSETS, "maren.glb"), height=1.7, appearance=appearance))


def test_unknown_clip_or_morph_target_is_an_error_naming_scene_and_field(tmp_path):
    """Loading the scene refuses it (the validator reads the model's clips and targets); a scene
    changed after loading is refused again by the renderer, naming the same field."""
    with pytest.raises(SceneError, match=r"scene\.toml:\d+: characters\[0\]\.appearance\.animations\.happy: "
                                         r"character 'thing': no animation clip 'dance' in maren\.glb"):
        _scene_with(tmp_path / "a", 'animations = { happy = "dance" }')
    with pytest.raises(SceneError, match=r"characters\[0\]\.appearance\.visemes\.aa\.jaw: character 'thing': "
                                         r"no morph target 'jaw' in maren\.glb"):
        _scene_with(tmp_path / "b", "[characters.appearance.visemes]\naa = { jaw = 1.0 }")
    with pytest.raises(SceneError, match=r"appearance\.model: character 'thing': file not found: 'nothing\.glb'"):
        _missing_model_scene(tmp_path / "c")
    scene = _scene_with(tmp_path / "d", "")
    scene.characters[0].appearance.animations["happy"] = "dance"
    with pytest.raises(MeshError, match=r"scene\.toml: character 'thing': appearance\.animations\.happy = "
                                        r"'dance': no such clip in maren\.glb"):
        SceneModel(scene)
    scene = _scene_with(tmp_path / "e", "")
    scene.characters[0].appearance.visemes["aa"] = {"jaw": 1.0}
    with pytest.raises(MeshError, match=r"appearance\.visemes\.aa: no morph target 'jaw' in maren\.glb"):
        SceneModel(scene)


def test_a_required_extension_we_do_not_draw_is_named(tmp_path):
    import pygltflib

    path = clips_model(tmp_path / "c.glb")
    gl = pygltflib.GLTF2().load(str(path))
    gl.extensionsUsed = gl.extensionsRequired = ["KHR_draco_mesh_compression"]
    gl.save_binary(str(tmp_path / "draco.glb"))
    with pytest.raises(MeshError, match=r"draco\.glb: needs glTF extensions .*KHR_draco_mesh_compression"):
        load_model(tmp_path / "draco.glb")


def _missing_model_scene(folder):
    f = scene_folder(folder, None)
    text = (f / "scene.toml").read_text() + '''
[[characters]]
id = "thing"
name = "Thing"
persona = "a test object"
[characters.appearance]
model = "nothing.glb"
'''
    (f / "scene.toml").write_text(text)
    return load_scene(f)


def test_demo_characters_have_what_the_scene_asks_for():
    scene = load_scene("scenes/lighthouse")
    model = SceneModel(scene)
    for c in model.characters:
        assert c.puppet is not None, c.character_id
        clips = set(c.puppet.model.clips)
        assert {"idle", "wave", "nod", "shrug"} <= clips
        assert {"mouth_open", "mouth_round", "mouth_wide", "mouth_closed", "blink"} <= \
            c.puppet.model.morph_target_names()
        assert c.puppet.model.textures and all(t.image.shape == (512, 512, 4) for t in c.puppet.model.textures)
        srgb = [t.srgb for t in c.puppet.model.textures]
        assert srgb.count(True) == 1  # the base colour atlas; metallic-roughness, normal, occlusion are linear
        assert len(c.puppet.model.skins[0].joints) == 14
    assert model.gesture("maren", "happy") and not model.gesture("maren", "no-such-emotion")
