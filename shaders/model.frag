#version 330 core
// glTF PBR metallic-roughness: base colour, metallic-roughness (B metal, G rough), normal
// (tangent frame from screen-space derivatives: files need no TANGENT), occlusion (R) and
// emissive textures; sRGB textures are decoded by the sampler (SRGB8_ALPHA8). Alpha modes:
// 0 OPAQUE, 1 MASK (cut-off), 2 BLEND (premultiplied). Lighting as scene.frag.

in vec3 v_world;
in vec3 v_normal;
in vec2 v_uv;

// the material, one small std140 buffer per glTF material (model_gpu.py: _material_block)
layout(std140) uniform Material {
    vec4 u_base_color;           // linear rgba factor
    vec4 u_emissive;             // rgb linear, times KHR_materials_emissive_strength; w: metallic factor
    vec4 u_factors;              // roughness, normal scale, occlusion strength, alpha cut-off
    ivec4 u_modes;               // x: alpha mode; y: textures bit mask (1 base, 2 metallic-roughness,
                                 //    4 normal, 8 occlusion, 16 emissive)
};
uniform float u_opacity;         // the scene's fade of the whole character (1 = visible)
uniform sampler2D u_tex_base;
uniform sampler2D u_tex_mr;
uniform sampler2D u_tex_normal;
uniform sampler2D u_tex_occlusion;
uniform sampler2D u_tex_emissive;

out vec4 frag_color;

#include "lighting.glsl"

vec3 perturb(vec3 n, vec3 world, vec2 uv) {
    // Schüler's cotangent frame from derivatives of position and uv
    vec3 dp1 = dFdx(world), dp2 = dFdy(world);
    vec2 duv1 = dFdx(uv), duv2 = dFdy(uv);
    vec3 dp2perp = cross(dp2, n), dp1perp = cross(n, dp1);
    vec3 t = dp2perp * duv1.x + dp1perp * duv2.x;
    vec3 b = dp2perp * duv1.y + dp1perp * duv2.y;
    float inv = inversesqrt(max(max(dot(t, t), dot(b, b)), 1e-20));
    vec3 m = texture(u_tex_normal, uv).xyz * 2.0 - 1.0;
    m.xy *= u_factors.y;
    return normalize(mat3(t * inv, b * inv, n) * m);
}

void main() {
    vec4 base = u_base_color;
    if ((u_modes.y & 1) != 0) base *= texture(u_tex_base, v_uv);
    float alpha = base.a * u_opacity;
    if (u_modes.x == 1) {
        if (base.a < u_factors.w) discard;
        alpha = u_opacity;
    } else if (u_modes.x == 0) {
        alpha = u_opacity;
    }
    float metal = u_emissive.w, rough = u_factors.x;
    if ((u_modes.y & 2) != 0) {
        vec4 mr = texture(u_tex_mr, v_uv);
        rough *= mr.g;
        metal *= mr.b;
    }
    vec3 n = normalize(v_normal);
    if (!gl_FrontFacing) n = -n;  // double-sided materials (culling is off only for those)
    if ((u_modes.y & 4) != 0) n = perturb(n, v_world, v_uv);
    float ao = 1.0;
    if ((u_modes.y & 8) != 0) ao = 1.0 + u_factors.z * (texture(u_tex_occlusion, v_uv).r - 1.0);
    vec3 emissive = u_emissive.rgb;
    if ((u_modes.y & 16) != 0) emissive *= texture(u_tex_emissive, v_uv).rgb;
    vec3 color = light_surface(v_world, n, base.rgb, clamp(rough, 0.04, 1.0), metal, ao) + emissive;
    frag_color = finish(color, alpha, v_world);
}
