#version 330 core
in vec2 v_corner;
in vec3 v_color;
uniform int u_srgb_encode;
out vec4 frag_color;

void main() {
    float r = length(v_corner);
    float glow = exp(-r * r * 5.0) * (1.0 - smoothstep(0.8, 1.0, r));
    vec3 c = v_color * glow;
    if (u_srgb_encode == 1) c = pow(c, vec3(1.0 / 2.2)) * step(1e-5, glow);
    frag_color = vec4(c, 0.0);  // additive in premultiplied blending: adds light, covers nothing
}
