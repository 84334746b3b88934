#version 330 core
// Glow billboards around bright lights (a lit lamp reads as glowing without a bloom pass).
layout(location = 0) in vec2 in_corner;     // -1..1
layout(location = 1) in vec4 i_center;      // xyz metres, w = radius metres
layout(location = 2) in vec3 i_color;       // linear colour * strength

uniform mat4 u_view_proj;
uniform vec3 u_right;    // billboard axes (world), shared by both eyes
uniform vec3 u_up;

out vec2 v_corner;
out vec3 v_color;

void main() {
    vec3 world = i_center.xyz + (in_corner.x * u_right + in_corner.y * u_up) * i_center.w;
    v_corner = in_corner;
    v_color = i_color;
    gl_Position = u_view_proj * vec4(world, 1.0);
}
