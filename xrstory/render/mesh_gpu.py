"""GPU-side pieces of ``SceneRenderer``: one primitive mesh kind's buffers (vertices, indices,
opaque and translucent instance rows) and the per-frame CPU time split (``RenderStats``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xrstory.render.scene_model import ROW


@dataclass
class RenderStats:
    """CPU time of the last ``draw`` (ms): all of it, and the part spent inside GL calls."""

    draw_ms: float = 0.0
    gl_call_ms: float = 0.0  # inside moderngl render/clear/write calls (driver work on llvmpipe)
    update_ms: float = 0.0
    draw_calls: int = 0

    @property
    def python_ms(self) -> float:
        """Our own work: traversal, uniform packing, draw submission bookkeeping."""
        return self.update_ms + self.draw_ms - self.gl_call_ms


class MeshGpu:
    """One mesh kind on the GPU: vertices, indices, two instance buffers (opaque, translucent)."""

    def __init__(self, ctx, program, data, capacity: int):
        self.vbo = ctx.buffer(data.vertices.tobytes())
        self.ibo = ctx.buffer(data.indices.astype(np.uint32).tobytes())
        self.counts = [0, 0]
        self.inst = [ctx.buffer(reserve=max(capacity, 1) * ROW * 4) for _ in range(2)]
        fmt = "4f 4f 4f 4f 4f 4f 4f/i"
        names = ("i_model0", "i_model1", "i_model2", "i_model3", "i_color", "i_emissive", "i_params")
        self.vaos = [ctx.vertex_array(program, [(self.vbo, "3f 3f 3f", "in_position", "in_normal", "in_color"),
                                                (buf, fmt, *names)], self.ibo, index_element_size=4)
                     for buf in self.inst]

    def upload(self, opaque: np.ndarray, clear: np.ndarray) -> None:
        for i, rows in enumerate((opaque, clear)):
            self.counts[i] = len(rows)
            if len(rows):
                self.inst[i].write(rows.tobytes())

    def release(self) -> None:
        for obj in (*self.vaos, *self.inst, self.vbo, self.ibo):
            obj.release()
