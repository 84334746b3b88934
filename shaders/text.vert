#version 330 core
// Billboarded text and its backing panel: vertices in the billboard's plane (metres),
// placed at an anchor and turned to face the player's head.
layout(location = 0) in vec2 in_position;   // metres, x right, y up, in the text plane
layout(location = 1) in vec2 in_uv;         // atlas texture coordinates
layout(location = 2) in float in_kind;      // 0 glyph, 1 panel

uniform mat4 u_view_proj;
uniform vec3 u_anchor;   // world position of the text's bottom centre
uniform vec3 u_right;
uniform vec3 u_up;

out vec2 v_uv;
out float v_kind;
out vec2 v_local;

void main() {
    vec3 world = u_anchor + in_position.x * u_right + in_position.y * u_up;
    v_uv = in_uv;
    v_kind = in_kind;
    v_local = in_position;
    gl_Position = u_view_proj * vec4(world, 1.0);
}
