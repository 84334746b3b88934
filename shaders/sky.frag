#version 330 core
// Gradient sky from the mood (horizon -> top), drifting storm clouds, fog below the horizon.
in vec2 v_ndc;

uniform mat4 u_inv_view_proj;
uniform vec3 u_eye;
uniform vec3 u_sky_top;
uniform vec3 u_sky_horizon;
uniform vec3 u_fog_color;
uniform float u_cloudiness;   // 0 clear .. 1 overcast
uniform float u_time;         // seconds
uniform float u_exposure;
uniform int u_srgb_encode;

out vec4 frag_color;

float hash(vec2 p) { return fract(sin(dot(p, vec2(127.1, 311.7))) * 43758.5453); }

float noise(vec2 p) {
    vec2 i = floor(p), f = fract(p);
    vec2 u = f * f * (3.0 - 2.0 * f);
    return mix(mix(hash(i), hash(i + vec2(1, 0)), u.x), mix(hash(i + vec2(0, 1)), hash(i + vec2(1, 1)), u.x), u.y);
}

float fbm(vec2 p) {
    float s = 0.0, a = 0.5;
    for (int i = 0; i < 4; ++i) { s += a * noise(p); p *= 2.03; a *= 0.5; }
    return s;
}

vec3 aces(vec3 x) {
    return clamp((x * (2.51 * x + 0.03)) / (x * (2.43 * x + 0.59) + 0.14), 0.0, 1.0);
}

void main() {
    vec4 far = u_inv_view_proj * vec4(v_ndc, 1.0, 1.0);
    vec3 dir = normalize(far.xyz / far.w - u_eye);
    float up = dir.y;
    vec3 sky = mix(u_sky_horizon, u_sky_top, pow(clamp(up, 0.0, 1.0), 0.6));
    if (up > 0.0) {
        vec2 uv = dir.xz / (up + 0.15) * 1.5 + vec2(u_time * 0.03, u_time * 0.01);
        float c = smoothstep(0.35, 0.8, fbm(uv));
        vec3 cloud = mix(u_sky_horizon, u_fog_color, 0.5) * 0.8;
        sky = mix(sky, cloud, c * u_cloudiness * smoothstep(0.0, 0.15, up));
    } else {
        sky = mix(u_sky_horizon, u_fog_color, clamp(-up * 4.0, 0.0, 1.0));
    }
    vec3 color = aces(sky * u_exposure);
    if (u_srgb_encode == 1) color = pow(color, vec3(1.0 / 2.2));
    frag_color = vec4(color, 1.0);
}
