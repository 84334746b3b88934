#version 330 core
// Shadow map pass of glTF primitives: depth only, except that alphaMode MASK cuts out what its
// base colour's alpha cuts out, so light passes through the holes (leaves, fences, hair cards).
in vec2 v_uv;

layout(std140) uniform Material {  // as model.frag (model_gpu.py: material_block)
    vec4 u_base_color;
    vec4 u_emissive;
    vec4 u_factors;                // w: alpha cut-off
    ivec4 u_modes;                 // y: textures bit mask (1 base colour)
};
uniform int u_alpha_test;          // 1 for MASK primitives (their material block is bound)
uniform sampler2D u_tex_base;

void main() {
    if (u_alpha_test == 1) {
        float a = u_base_color.a;
        if ((u_modes.y & 1) != 0) a *= texture(u_tex_base, v_uv).a;
        if (a < u_factors.w) discard;
    }
}
