#version 330 core
// A small physically based material: Lambert diffuse + GGX specular with Schlick Fresnel
// (base colour, roughness, metallic, emissive); directional, point and spot lights;
// hemispheric ambient from the mood; exponential-squared fog; ACES tone map; sRGB encode.
// Output is premultiplied alpha (blend ONE, ONE_MINUS_SRC_ALPHA) so the same shader serves
// opaque VR, alpha-blended AR and additive AR.

in vec3 v_world;
in vec3 v_normal;
in vec4 v_color;
in vec4 v_emissive;
in float v_metallic;

const int MAX_DIR = 4;
const int MAX_POINT = 16;
const int MAX_SPOT = 4;

uniform vec3 u_eye;              // world position of this view's eye, metres
uniform vec3 u_ambient;
uniform vec3 u_fog_color;
uniform float u_fog_density;     // per metre
uniform float u_exposure;
uniform int u_blend_mode;        // 0 opaque, 1 alpha_blend (AR), 2 additive (AR)
uniform int u_srgb_encode;       // 1: write sRGB-encoded values into a linear RGBA8 target

uniform int u_n_dir;
uniform vec3 u_dir_direction[MAX_DIR];   // direction the light travels (normalised)
uniform vec3 u_dir_color[MAX_DIR];       // colour * intensity

uniform int u_n_point;
uniform vec4 u_point_position[MAX_POINT];  // xyz metres, w = range in metres
uniform vec3 u_point_color[MAX_POINT];

uniform int u_n_spot;
uniform vec4 u_spot_position[MAX_SPOT];    // xyz, w = range
uniform vec4 u_spot_direction[MAX_SPOT];   // xyz, w = cos(cone half-angle)
uniform vec3 u_spot_color[MAX_SPOT];

out vec4 frag_color;

const float PI = 3.14159265;

vec3 aces(vec3 x) {
    // Narkowicz's fit of the ACES filmic curve
    return clamp((x * (2.51 * x + 0.03)) / (x * (2.43 * x + 0.59) + 0.14), 0.0, 1.0);
}

vec3 brdf(vec3 n, vec3 v, vec3 l, vec3 base, float rough, float metal) {
    vec3 h = normalize(v + l);
    float nl = max(dot(n, l), 0.0);
    float nv = max(dot(n, v), 1e-3);
    float nh = max(dot(n, h), 0.0);
    float a = max(rough * rough, 0.02);
    float a2 = a * a;
    float d = a2 / (PI * pow(nh * nh * (a2 - 1.0) + 1.0, 2.0));
    float k = (rough + 1.0) * (rough + 1.0) / 8.0;
    float g = (nv / (nv * (1.0 - k) + k)) * (nl / (nl * (1.0 - k) + k));
    vec3 f0 = mix(vec3(0.04), base, metal);
    vec3 f = f0 + (1.0 - f0) * pow(1.0 - max(dot(h, v), 0.0), 5.0);
    vec3 spec = d * g * f / (4.0 * nv * max(nl, 1e-3));
    vec3 diffuse = (1.0 - f) * (1.0 - metal) * base / PI;
    return (diffuse + spec) * nl;
}

float range_falloff(float dist, float range) {
    // inverse-square, windowed so the light reaches exactly zero at its range
    float w = clamp(1.0 - pow(dist / range, 4.0), 0.0, 1.0);
    return w * w / (1.0 + dist * dist);
}

void main() {
    vec3 n = normalize(v_normal);
    vec3 v = normalize(u_eye - v_world);
    if (!gl_FrontFacing) n = -n;  // planes and open meshes are lit from both sides
    vec3 base = v_color.rgb;
    float rough = clamp(v_emissive.a, 0.04, 1.0);
    float metal = v_metallic;

    // hemispheric ambient: more from above than below; metals reflect it as tinted specular
    vec3 ambient = u_ambient * (0.55 + 0.45 * n.y) * mix(base, base * 0.5 + 0.5 * base * (1.0 - rough), metal);
    vec3 color = ambient;
    for (int i = 0; i < u_n_dir; ++i) {
        color += brdf(n, v, -u_dir_direction[i], base, rough, metal) * u_dir_color[i] * PI;
    }
    for (int i = 0; i < u_n_point; ++i) {
        vec3 d = u_point_position[i].xyz - v_world;
        float dist = length(d);
        color += brdf(n, v, d / max(dist, 1e-4), base, rough, metal) * u_point_color[i] * PI
                 * range_falloff(dist, u_point_position[i].w);
    }
    for (int i = 0; i < u_n_spot; ++i) {
        vec3 d = u_spot_position[i].xyz - v_world;
        float dist = length(d);
        vec3 l = d / max(dist, 1e-4);
        float cos_cone = u_spot_direction[i].w;
        float spot = smoothstep(cos_cone, mix(cos_cone, 1.0, 0.25), dot(-l, u_spot_direction[i].xyz));
        color += brdf(n, v, l, base, rough, metal) * u_spot_color[i] * PI
                 * range_falloff(dist, u_spot_position[i].w) * spot;
    }
    color += v_emissive.rgb;

    float dist_eye = length(u_eye - v_world);
    float fog = 1.0 - exp(-pow(u_fog_density * dist_eye, 2.0));
    if (u_blend_mode == 0) {
        color = mix(color, u_fog_color, fog);
    } else {
        color *= 1.0 - fog;  // in AR fog fades geometry out instead of painting fog over the room
    }
    color = aces(color * u_exposure);
    if (u_srgb_encode == 1) color = pow(color, vec3(1.0 / 2.2));
    float alpha = v_color.a;
    if (u_blend_mode == 2) alpha = 0.0;  // additive: colour adds to the world, black is clear
    frag_color = vec4(color * v_color.a, alpha);
}
