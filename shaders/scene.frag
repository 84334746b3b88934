#version 330 core
// Lit instanced scene geometry (props, primitive figures): the material comes per instance.
// Lighting, shadows, fog and tone mapping are shared with model.frag (lighting.glsl).

in vec3 v_world;
in vec3 v_normal;
in vec4 v_color;
in vec4 v_emissive;
in float v_metallic;

out vec4 frag_color;

#include "lighting.glsl"

void main() {
    vec3 n = normalize(v_normal);
    if (!gl_FrontFacing) n = -n;  // planes and open meshes are lit from both sides
    float rough = clamp(v_emissive.a, 0.04, 1.0);
    vec3 color = light_surface(v_world, n, v_color.rgb, rough, v_metallic, 1.0) + v_emissive.rgb;
    frag_color = finish(color, v_color.a, v_world);
}
