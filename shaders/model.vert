#version 330 core
// glTF primitives: morph targets (deltas in a float texture, fetched by vertex id) then
// linear blend skinning with up to 4 joints per vertex; joint matrices in a uniform array.
// Units: metres. u_model places the model's space in the world.

layout(location = 0) in vec3 in_position;
layout(location = 1) in vec3 in_normal;
layout(location = 2) in vec2 in_uv;
layout(location = 3) in vec4 in_joints;   // joint indices as floats
layout(location = 4) in vec4 in_weights;  // sum 1 (normalised on load)

const int MAX_JOINTS = 64;
const int MAX_TARGETS = 16;
const int MORPH_WIDTH = 4096;             // texels per row of the morph texture

uniform mat4 u_view_proj;
uniform int u_skinned;
layout(std140) uniform Joints {           // one buffer per character and skin, written once a frame
    mat4 u_joints[MAX_JOINTS];            // model space, joint world @ inverse bind
};
layout(std140) uniform Instance {         // one buffer per character and primitive, written once a frame
    mat4 u_model;                         // model space -> world
    vec4 u_morph_weights[MAX_TARGETS / 4];  // weight of target t: [t / 4][t % 4]
};
uniform sampler2D u_morph;                // RGBA32F: per target, per vertex: position delta, normal delta
uniform int u_morph_count;
uniform int u_morph_vertices;
uniform mat3 u_uv_transform;              // KHR_texture_transform

out vec3 v_world;
out vec3 v_normal;
out vec2 v_uv;

void main() {
    vec3 p = in_position;
    vec3 n = in_normal;
    for (int t = 0; t < u_morph_count; ++t) {
        float w = u_morph_weights[t / 4][t % 4];
        if (w == 0.0) continue;
        int i = (t * u_morph_vertices + gl_VertexID) * 2;
        p += w * texelFetch(u_morph, ivec2(i % MORPH_WIDTH, i / MORPH_WIDTH), 0).xyz;
        n += w * texelFetch(u_morph, ivec2((i + 1) % MORPH_WIDTH, (i + 1) / MORPH_WIDTH), 0).xyz;
    }
    mat4 m = u_model;
    if (u_skinned == 1) {
        m = u_model * (in_weights.x * u_joints[int(in_joints.x)] + in_weights.y * u_joints[int(in_joints.y)]
                       + in_weights.z * u_joints[int(in_joints.z)] + in_weights.w * u_joints[int(in_joints.w)]);
    }
    vec4 world = m * vec4(p, 1.0);
    v_world = world.xyz;
    v_normal = transpose(inverse(mat3(m))) * n;
    v_uv = (u_uv_transform * vec3(in_uv, 1.0)).xy;
    gl_Position = u_view_proj * world;
}
