// Shared lighting for scene.frag and model.frag (pasted in by shaders.py's #include).
// Lambert diffuse + GGX specular with Schlick Fresnel; directional, point and spot lights;
// one of them may cast shadows from a shadow map (percentage-closer filtering: 2x2 taps on a
// comparison sampler, each tap itself bilinearly filtered); hemispheric ambient;
// exponential-squared fog; ACES
// tone map; sRGB encode. Output is premultiplied alpha.

#ifndef SHADOW_TAPS
#define SHADOW_TAPS 4  // comparison taps per pixel: 4 (a 3x3-texel filter) or 1 (2x2); the renderer chooses
#endif

const int MAX_DIR = 4;
const int MAX_POINT = 16;
const int MAX_SPOT = 4;

uniform vec3 u_eye;              // world position of this view's eye, metres
uniform int u_blend_mode;        // 0 opaque, 1 alpha_blend (AR), 2 additive (AR)

// Everything about the lights in one uniform buffer (std140), written once per change for every
// program that includes this file (renderer.py packs it: _light_block).
layout(std140) uniform Lights {
    vec4 u_ambient;              // rgb; w: exposure
    vec4 u_fog;                  // rgb fog colour; w: density per metre
    ivec4 u_counts;              // directional, point, spot lights; w: 1 = write sRGB-encoded values
    ivec4 u_shadow;              // x: 0 none, 1 directional light y, 2 point light y
    vec4 u_shadow_params;        // x: 1 / shadow map size
    mat4 u_shadow_matrix;        // world -> light clip space
    vec4 u_dir_direction[MAX_DIR];   // xyz direction the light travels (normalised)
    vec4 u_dir_color[MAX_DIR];       // rgb colour * intensity
    vec4 u_point_position[MAX_POINT];  // xyz metres, w = range in metres
    vec4 u_point_color[MAX_POINT];
    vec4 u_spot_position[MAX_SPOT];    // xyz, w = range
    vec4 u_spot_direction[MAX_SPOT];   // xyz, w = cos(cone half-angle)
    vec4 u_spot_color[MAX_SPOT];
};
uniform sampler2DShadow u_shadow_map;  // every caster, redrawn when one or the light moved

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

float shadow_at(vec3 world, vec3 n, vec3 l) {
    // normal offset (grows at grazing angles) keeps lit surfaces from shadowing themselves
    float slope = 1.0 - max(dot(n, l), 0.0);
    vec4 c = u_shadow_matrix * vec4(world + n * (0.02 + 0.04 * slope), 1.0);
    vec3 p = c.xyz / c.w * 0.5 + 0.5;
    if (c.w <= 0.0 || p.x <= 0.0 || p.x >= 1.0 || p.y <= 0.0 || p.y >= 1.0 || p.z >= 1.0) return 1.0;
#if SHADOW_TAPS == 1
    return texture(u_shadow_map, vec3(p.xy, p.z - 0.0005));  // one bilinear 2x2 comparison
#else
    // four taps half a texel apart, each a bilinear 2x2 comparison: a 3x3-texel filter for 4 taps
    float sum = 0.0;
    for (int y = 0; y < 2; ++y)
        for (int x = 0; x < 2; ++x)
        {
            vec3 at = vec3(p.xy + (vec2(x, y) - 0.5) * u_shadow_params.x, p.z - 0.0005);
            sum += texture(u_shadow_map, at);
        }
    return sum * 0.25;
#endif
}

vec3 light_surface(vec3 world, vec3 n, vec3 base, float rough, float metal, float ao) {
    vec3 v = normalize(u_eye - world);
    // hemispheric ambient: more from above than below; metals reflect it as tinted specular
    vec3 color = ao * u_ambient.rgb * (0.55 + 0.45 * n.y) * mix(base, base * 0.5 + 0.5 * base * (1.0 - rough), metal);
    // the shadow light's visibility, computed once: llvmpipe runs both sides of every branch (masked
    // lanes), so a shadow lookup inside the light loops would be paid once per light
    int si = clamp(u_shadow.y, 0, MAX_POINT - 1);
    vec3 sl = u_shadow.x == 1 ? -u_dir_direction[min(si, MAX_DIR - 1)].xyz
                              : normalize(u_point_position[si].xyz - world);
    float shadow = u_shadow.x == 0 ? 1.0 : shadow_at(world, n, sl);
    for (int i = 0; i < u_counts.x; ++i) {
        vec3 l = -u_dir_direction[i].xyz;
        float sh = (u_shadow.x == 1 && i == u_shadow.y) ? shadow : 1.0;
        color += brdf(n, v, l, base, rough, metal) * u_dir_color[i].rgb * PI * sh;
    }
    for (int i = 0; i < u_counts.y; ++i) {
        vec3 d = u_point_position[i].xyz - world;
        float dist = length(d);
        vec3 l = d / max(dist, 1e-4);
        float sh = (u_shadow.x == 2 && i == u_shadow.y) ? shadow : 1.0;
        color += brdf(n, v, l, base, rough, metal) * u_point_color[i].rgb * PI
                 * range_falloff(dist, u_point_position[i].w) * sh;
    }
    for (int i = 0; i < u_counts.z; ++i) {
        vec3 d = u_spot_position[i].xyz - world;
        float dist = length(d);
        vec3 l = d / max(dist, 1e-4);
        float cos_cone = u_spot_direction[i].w;
        float spot = smoothstep(cos_cone, mix(cos_cone, 1.0, 0.25), dot(-l, u_spot_direction[i].xyz));
        color += brdf(n, v, l, base, rough, metal) * u_spot_color[i].rgb * PI
                 * range_falloff(dist, u_spot_position[i].w) * spot;
    }
    return color;
}

vec4 finish(vec3 color, float alpha, vec3 world) {
    float dist_eye = length(u_eye - world);
    float fog = 1.0 - exp(-pow(u_fog.w * dist_eye, 2.0));
    if (u_blend_mode == 0) {
        color = mix(color, u_fog.rgb, fog);
    } else {
        color *= 1.0 - fog;  // in AR fog fades geometry out instead of painting fog over the room
    }
    color = aces(color * u_ambient.w);
    if (u_counts.w == 1) color = pow(color, vec3(1.0 / 2.2));
    float a = alpha;
    if (u_blend_mode == 2) a = 0.0;  // additive: colour adds to the world, black is clear
    return vec4(color * alpha, a);
}
