"""A character drawn from a glTF model: its pose each frame (idle clip, gestures per emotion,
cross-faded), its face (visemes, blinks), and the bytes the GPU needs (joint matrices per skin,
morph weights per mesh node). No GL here; ``model_gpu.py`` draws it.

Scene fields used (``appearance`` of a character): ``model`` (the .glb), ``idle`` (a looping
clip), ``animations`` (emotion or gesture -> clip name), ``visemes`` (viseme class -> {morph
target: weight}), ``blink`` (a morph target).
"""

from __future__ import annotations

import numpy as np

from xrstory.render.face import Face
from xrstory.render.gltf import GltfModel
from xrstory.render.mesh import MeshError
from xrstory.render.pose import ClipMixer, ModelPose

MAX_JOINTS, MAX_TARGETS = 64, 16


class Puppet:
    def __init__(self, model: GltfModel, appearance, character_id: str, where: str):
        self.model = model
        self.pose = ModelPose(model)
        for field, clip in [("idle", appearance.idle), *[(f"animations.{k}", v) for k, v in
                                                         appearance.animations.items()]]:
            if clip and clip not in model.clips:
                raise MeshError(f"{where}: appearance.{field} = '{clip}': no such clip in {model.path.name} "
                                f"(it has: {', '.join(sorted(model.clips)) or 'none'})")
        targets: dict[str, list[tuple[int, int]]] = {}
        for i, node in enumerate(model.nodes):
            if node.mesh is not None:
                for k, name in enumerate(model.meshes[node.mesh].target_names[:MAX_TARGETS]):
                    targets.setdefault(name, []).append((i, k))
        for cls, shape in appearance.visemes.items():
            for t in shape:
                if t not in targets:
                    raise MeshError(f"{where}: appearance.visemes.{cls}: no morph target '{t}' in "
                                    f"{model.path.name} (it has: {', '.join(sorted(targets)) or 'none'})")
        for sk in model.skins:
            if len(sk.joints) > MAX_JOINTS:
                raise MeshError(f"{where}: {model.path.name}: skin '{sk.name}' has {len(sk.joints)} joints; "
                                f"at most {MAX_JOINTS} are drawn")
        self.animations = dict(appearance.animations)
        self.mixer = ClipMixer(model, appearance.idle)
        self.face = Face(targets, appearance.visemes, appearance.blink, character_id,
                         open_target=next(iter(targets), None))
        self.world = self.pose.world()
        self.joint_bytes: dict[int, bytes] = {}
        self._joints = [np.tile(np.eye(4, dtype=np.float32), (MAX_JOINTS, 1, 1)) for _ in model.skins]
        self.weights_padded: dict[int, np.ndarray] = {}  # mesh node -> (MAX_TARGETS,) morph weights
        self.evaluate(0.0, 0.0, "")

    def gesture(self, emotion_or_name: str) -> bool:
        """Play the clip the scene names for this emotion (or a clip by name). False if none."""
        clip = self.animations.get(emotion_or_name, emotion_or_name if emotion_or_name in self.model.clips else None)
        return bool(clip) and self.mixer.play(clip)

    def evaluate(self, dt: float, level: float, viseme: str) -> None:
        self.mixer.advance(dt)
        self.mixer.apply(self.pose)
        self.face.update(dt, level, viseme)
        self.face.apply(self.pose.weights)
        self.world = self.pose.world()
        for s in range(len(self.model.skins)):
            jm = self.pose.joint_matrices(s, self.world)
            self._joints[s][:len(jm)] = jm.transpose(0, 2, 1)  # column-major for GLSL
            self.joint_bytes[s] = self._joints[s].tobytes()  # the uniform array is written whole
        for node, w in self.pose.weights.items():
            pad = self.weights_padded.get(node)
            if pad is None:
                pad = self.weights_padded[node] = np.zeros(MAX_TARGETS, np.float32)
            n = min(len(w), MAX_TARGETS)
            pad[:n] = w[:n]
