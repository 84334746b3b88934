#version 330 core
// Signed-distance-field glyphs (0.5 = the outline, spread encoded in the atlas) with a dark
// outline for contrast, over a translucent rounded panel. Premultiplied alpha out.
in vec2 v_uv;
in float v_kind;
in vec2 v_local;

uniform sampler2D u_atlas;
uniform vec4 u_text_color;     // linear rgb, alpha
uniform vec4 u_panel_color;
uniform vec4 u_panel_rect;     // min x, min y, max x, max y (metres, text plane)
uniform float u_panel_radius;  // metres
uniform int u_srgb_encode;

out vec4 frag_color;

vec3 encode(vec3 c) { return u_srgb_encode == 1 ? pow(c, vec3(1.0 / 2.2)) : c; }

void main() {
    if (v_kind > 0.5) {
        vec2 centre = 0.5 * (u_panel_rect.xy + u_panel_rect.zw);
        vec2 half_size = 0.5 * (u_panel_rect.zw - u_panel_rect.xy) - vec2(u_panel_radius);
        float d = length(max(abs(v_local - centre) - half_size, 0.0)) - u_panel_radius;
        float w = fwidth(d);
        float a = u_panel_color.a * (1.0 - smoothstep(-w, w, d));
        frag_color = vec4(encode(u_panel_color.rgb) * a, a);
        return;
    }
    float dist = texture(u_atlas, v_uv).r;        // 0.5 on the glyph edge, >0.5 inside
    float w = max(fwidth(dist), 1e-4) * 0.75;
    float fill = smoothstep(0.5 - w, 0.5 + w, dist);
    float outline = smoothstep(0.36 - w, 0.36 + w, dist);
    vec3 c = mix(vec3(0.0), encode(u_text_color.rgb), fill);
    float a = outline * u_text_color.a;
    frag_color = vec4(c * a, a);
}
