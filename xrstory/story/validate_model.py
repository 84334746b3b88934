"""Checks of a character's ``appearance.model`` that ``xrstory validate`` runs: the file exists,
is a glTF 2.0 file that parses (``.gltf`` JSON or ``.glb`` binary), and the clips the scene
names (``idle``, ``animations``) and the morph targets it names (``visemes``, ``blink``) are in
it. Each problem is a ``SceneIssue`` naming the field path, the character and the value.

Only the file's JSON is read (no buffers, no images): the story layer imports nothing of the
renderer, and validation stays fast. ``xrstory.render.gltf`` does the full load when drawing.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from xrstory.story.errors import SceneIssue, closest

GLB_MAGIC, GLB_JSON = 0x46546C67, 0x4E4F534A  # "glTF", "JSON"


class ModelFileError(ValueError):
    """A file that is not a glTF 2.0 model; the message says why."""


def read_gltf_json(path: Path) -> dict:
    """The glTF JSON of ``path`` (a .gltf file, or a .glb's JSON chunk)."""
    data = path.read_bytes()
    if data[:4] == b"glTF":
        if len(data) < 20:
            raise ModelFileError("a GLB file shorter than its 12-byte header and first chunk header")
        magic, version, length = struct.unpack_from("<III", data, 0)
        if version != 2:
            raise ModelFileError(f"GLB container version {version}, not 2")
        chunk_len, chunk_type = struct.unpack_from("<II", data, 12)
        if chunk_type != GLB_JSON or 20 + chunk_len > len(data):
            raise ModelFileError("the GLB's first chunk is not a complete JSON chunk")
        text = data[20:20 + chunk_len]
    else:
        text = data
    try:
        doc = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"not glTF JSON or GLB ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("asset"), dict):
        raise ModelFileError("no 'asset' object: not a glTF file")
    version = str(doc["asset"].get("version", ""))
    if not version.startswith("2."):
        raise ModelFileError(f"asset.version '{version}': only glTF 2.x is read")
    return doc


def clip_names(doc: dict) -> set[str]:
    return {a.get("name", f"animation_{i}") for i, a in enumerate(doc.get("animations", []))}


def target_names(doc: dict) -> set[str]:
    """Morph target names (``mesh.extras.targetNames``, as Blender writes them; unnamed targets
    are ``target_<i>``, as the renderer names them)."""
    out: set[str] = set()
    for mesh in doc.get("meshes", []):
        count = max((len(p.get("targets", [])) for p in mesh.get("primitives", [])), default=0)
        extras = mesh.get("extras")
        names = list(extras.get("targetNames", [])) if isinstance(extras, dict) else []
        out |= {str(n) for n in names} | {f"target_{i}" for i in range(len(names), count)}
    return out


def check_character_model(file: Path, folder: str | None, index: int, character) -> list[SceneIssue]:
    """Issues of character ``index``'s ``appearance.model`` (none when it has no model)."""
    ap = character.appearance
    if not ap.model:
        return []
    base = f"characters[{index}].appearance"
    who = f"character '{character.id}'"
    if not ap.model.lower().endswith((".gltf", ".glb")):
        return [SceneIssue(file, f"{base}.model", f"{who}: '{ap.model}' is not a .gltf or .glb file",
                           value=ap.model)]
    path = Path(folder or ".") / ap.model
    if not path.is_file():
        return [SceneIssue(file, f"{base}.model", f"{who}: file not found: '{ap.model}' (relative to "
                                                 f"{folder or '.'})", value=ap.model)]
    try:
        doc = read_gltf_json(path)
    except (OSError, ModelFileError) as exc:
        return [SceneIssue(file, f"{base}.model", f"{who}: '{ap.model}' does not parse as glTF 2.0: {exc}",
                           value=ap.model)]
    issues = []
    clips, targets = clip_names(doc), target_names(doc)
    named = [("idle", ap.idle)] + [(f"animations.{k}", v) for k, v in ap.animations.items()]
    for field, clip in named:
        if clip and clip not in clips:
            issues.append(SceneIssue(file, f"{base}.{field}", f"{who}: no animation clip '{clip}' in {path.name} "
                                     f"(it has: {', '.join(sorted(clips)) or 'none'})", value=clip,
                                     suggestion=closest(clip, clips)))
    for cls, shape in ap.visemes.items():
        for t in shape:
            if t not in targets:
                issues.append(SceneIssue(file, f"{base}.visemes.{cls}.{t}", f"{who}: no morph target '{t}' in "
                                         f"{path.name} (it has: {', '.join(sorted(targets)) or 'none'})", value=t,
                                         suggestion=closest(t, targets)))
    # blink has a default ("blink"); a model without that target simply does not blink, so
    # only a blink the scene names is checked
    if "blink" in ap.model_fields_set and ap.blink and ap.blink not in targets:
        issues.append(SceneIssue(file, f"{base}.blink", f"{who}: no morph target '{ap.blink}' in {path.name} "
                                 f"(it has: {', '.join(sorted(targets)) or 'none'})", value=ap.blink,
                                 suggestion=closest(ap.blink, targets)))
    return issues
