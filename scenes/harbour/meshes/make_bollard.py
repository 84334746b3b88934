"""Write scenes/harbour/meshes/bollard.gltf: an octagonal mooring bollard with a flared cap,
flat-shaded, 1 m tall, base at y=0, one embedded base64 buffer (glTF 2.0).

The harbour scene uses it as its glTF mesh prop. Regenerate from the repo root with
    .venv/bin/python scenes/harbour/meshes/make_bollard.py
"""
import base64

import numpy as np
import pygltflib as g

sides = 8
# (radius, height) profile from the base up: post, then a flared cap
profile = [(0.18, 0.0), (0.18, 0.75), (0.26, 0.82), (0.26, 0.95), (0.0, 1.0)]
pos, nrm, idx = [], [], []
ang = np.linspace(0, 2 * np.pi, sides + 1)
for (r0, y0), (r1, y1) in zip(profile[:-1], profile[1:], strict=False):
    for k in range(sides):
        a, b = ang[k], ang[k + 1]
        quad = [(r0 * np.cos(a), y0, r0 * np.sin(a)), (r0 * np.cos(b), y0, r0 * np.sin(b)),
                (r1 * np.cos(b), y1, r1 * np.sin(b)), (r1 * np.cos(a), y1, r1 * np.sin(a))]
        q = np.array(quad, dtype=np.float32)
        # outward normal; the apex row collapses one edge, so take the non-degenerate triangle
        n = np.cross(q[2] - q[0], q[1] - q[0])
        if np.linalg.norm(n) < 1e-9:
            n = np.cross(q[3] - q[0], q[1] - q[0])
        n = n / np.linalg.norm(n)
        base = len(pos)
        pos.extend(q)
        nrm.extend([n] * 4)
        idx.extend([base, base + 2, base + 1, base, base + 3, base + 2])
# bottom cap facing -Y
centre = len(pos)
pos.append(np.array((0, 0, 0), np.float32))
nrm.append(np.array((0, -1, 0), np.float32))
ring = len(pos)
for k in range(sides):
    pos.append(np.array((0.18 * np.cos(ang[k]), 0, 0.18 * np.sin(ang[k])), np.float32))
    nrm.append(np.array((0, -1, 0), np.float32))
for k in range(sides):
    idx.extend([centre, ring + k, ring + (k + 1) % sides])
P = np.array(pos, np.float32)  # (n, 3) metres
N = np.array(nrm, np.float32)  # (n, 3) unit
IDX = np.array(idx, np.uint16)  # (t*3,)
# make the winding counter-clockwise seen from outside: flip triangles whose normal disagrees
tri = IDX.reshape(-1, 3)
for t in tri:
    face = np.cross(P[t[1]] - P[t[0]], P[t[2]] - P[t[0]])
    if np.dot(face, N[t[0]]) < 0:
        t[1], t[2] = t[2], t[1]
IDX = tri.reshape(-1)
ib, pb, nb = IDX.tobytes(), P.tobytes(), N.tobytes()
pad = (4 - len(ib) % 4) % 4
blob = ib + b"\0" * pad + pb + nb
gl = g.GLTF2(
    asset=g.Asset(version="2.0", generator="xrstory harbour scene"),
    scene=0, scenes=[g.Scene(nodes=[0])], nodes=[g.Node(mesh=0, name="bollard")],
    meshes=[g.Mesh(name="bollard", primitives=[g.Primitive(attributes=g.Attributes(POSITION=1, NORMAL=2), indices=0, mode=4)])],
    buffers=[g.Buffer(byteLength=len(blob), uri="data:application/octet-stream;base64," + base64.b64encode(blob).decode())],
    bufferViews=[g.BufferView(buffer=0, byteOffset=0, byteLength=len(ib), target=g.ELEMENT_ARRAY_BUFFER),
                 g.BufferView(buffer=0, byteOffset=len(ib) + pad, byteLength=len(pb) + len(nb), byteStride=12, target=g.ARRAY_BUFFER)],
    accessors=[g.Accessor(bufferView=0, componentType=g.UNSIGNED_SHORT, count=len(IDX), type=g.SCALAR, min=[int(IDX.min())], max=[int(IDX.max())]),
               g.Accessor(bufferView=1, byteOffset=0, componentType=g.FLOAT, count=len(P), type=g.VEC3, min=P.min(0).tolist(), max=P.max(0).tolist()),
               g.Accessor(bufferView=1, byteOffset=len(pb), componentType=g.FLOAT, count=len(N), type=g.VEC3, min=N.min(0).tolist(), max=N.max(0).tolist())],
)
gl.save_json("scenes/harbour/meshes/bollard.gltf")
print(len(P), "vertices", len(IDX) // 3, "triangles", len(blob), "bytes")
