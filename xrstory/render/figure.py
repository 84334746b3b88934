"""Characters as recognisable figures built from primitives: feet, legs, coat, arms, hands,
neck, head with hair, eyes, nose and a mouth that opens with the voice's envelope.

The rig is authored for a 1.75 m figure facing +Z (local space, metres, feet at y=0) and
scaled to the character's height. Pure numpy: ``scene_model.py`` places it in the world.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xrstory.render.transform import rotation_euler_deg, scaling, translation

RIG_HEIGHT = 1.75  # metres: the height the part table below is written for
HAIR_COLORS = [(0.55, 0.55, 0.57), (0.28, 0.18, 0.1), (0.12, 0.1, 0.09), (0.6, 0.42, 0.2)]


@dataclass(frozen=True)
class Part:
    name: str
    mesh: str  # primitive name
    matrix: np.ndarray  # (4, 4) local to figure space
    color: tuple[float, float, float]
    roughness: float = 0.8
    metallic: float = 0.0
    emissive: tuple[float, float, float] = (0.0, 0.0, 0.0)


def _part(name, mesh, pos, size, color, rot=(0, 0, 0), **kw) -> Part:
    return Part(name, mesh, translation(pos) @ rotation_euler_deg(rot) @ scaling(size), color, **kw)


def _shade(c, k: float) -> tuple[float, float, float]:
    return tuple(float(min(1.0, v * k)) for v in c)


def build_rig(character_id: str, body_color, head_color) -> list[Part]:
    """The parts of one figure; the mouth is always the last part (``MOUTH_INDEX``)."""
    body, skin = tuple(body_color), tuple(head_color)
    trousers = _shade(body, 0.55)
    boots = (0.08, 0.07, 0.06)
    hair = HAIR_COLORS[sum(map(ord, character_id)) % len(HAIR_COLORS)]
    eye = (0.04, 0.04, 0.05)
    parts = [
        _part("foot_l", "box", (-0.1, 0.04, 0.04), (0.12, 0.08, 0.26), boots),
        _part("foot_r", "box", (0.1, 0.04, 0.04), (0.12, 0.08, 0.26), boots),
        _part("leg_l", "cylinder", (-0.1, 0.46, 0.0), (0.15, 0.8, 0.15), trousers),
        _part("leg_r", "cylinder", (0.1, 0.46, 0.0), (0.15, 0.8, 0.15), trousers),
        _part("hips", "box", (0.0, 0.9, 0.0), (0.38, 0.2, 0.26), trousers),
        _part("coat", "cylinder", (0.0, 1.15, 0.0), (0.44, 0.62, 0.3), body),
        _part("coat_hem", "cone", (0.0, 0.86, 0.0), (0.5, 0.3, 0.34), body, rot=(180, 0, 0)),
        _part("shoulders", "sphere", (0.0, 1.43, 0.0), (0.5, 0.2, 0.3), body),
        _part("arm_l", "cylinder", (-0.28, 1.14, 0.0), (0.11, 0.6, 0.11), body, rot=(0, 0, -9)),
        _part("arm_r", "cylinder", (0.28, 1.14, 0.0), (0.11, 0.6, 0.11), body, rot=(0, 0, 9)),
        _part("hand_l", "sphere", (-0.33, 0.82, 0.0), (0.1, 0.12, 0.1), skin),
        _part("hand_r", "sphere", (0.33, 0.82, 0.0), (0.1, 0.12, 0.1), skin),
        _part("neck", "cylinder", (0.0, 1.52, 0.0), (0.1, 0.1, 0.1), skin),
        _part("head", "sphere", (0.0, 1.65, 0.0), (0.22, 0.27, 0.24), skin, roughness=0.6),
        _part("hair", "sphere", (0.0, 1.71, -0.02), (0.235, 0.19, 0.25), hair, roughness=0.9),
        _part("nose", "sphere", (0.0, 1.64, 0.118), (0.035, 0.05, 0.04), _shade(skin, 0.9)),
        _part("eye_l", "sphere", (-0.045, 1.675, 0.103), (0.032, 0.035, 0.02), eye, roughness=0.2),
        _part("eye_r", "sphere", (0.045, 1.675, 0.103), (0.032, 0.035, 0.02), eye, roughness=0.2),
        _part("brow_l", "box", (-0.047, 1.705, 0.108), (0.045, 0.01, 0.01), hair),
        _part("brow_r", "box", (0.047, 1.705, 0.108), (0.045, 0.01, 0.01), hair),
        mouth_part(0.0),
    ]
    return parts


MOUTH_INDEX = -1
MOUTH_COLOR = (0.35, 0.08, 0.08)


def mouth_part(openness: float) -> Part:
    """The mouth for a voice envelope 0..1: a thin line when closed, an open oval when loud;
    it glows faintly while open so a speaking figure reads even in a dark room."""
    o = float(min(max(openness, 0.0), 1.0))
    return _part("mouth", "sphere", (0.0, 1.595 - 0.008 * o, 0.108), (0.06 + 0.01 * o, 0.012 + 0.04 * o, 0.02),
                 MOUTH_COLOR, roughness=0.5, emissive=(0.5 * o, 0.15 * o, 0.1 * o))


def head_height(height_m: float) -> float:
    """World height of the top of the head for a figure of ``height_m``."""
    return height_m * 1.805 / RIG_HEIGHT  # top of the hair in the rig is at 1.805 m
