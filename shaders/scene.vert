#version 330 core
// Lit scene geometry, instanced: one draw per mesh, one instance per prop or figure part.
// Units: metres, world space right-handed (+Y up, -Z forward, OpenXR).

layout(location = 0) in vec3 in_position;  // mesh space
layout(location = 1) in vec3 in_normal;
layout(location = 2) in vec3 in_color;     // vertex colour (glTF material), white for primitives

// per instance: model matrix columns, material
layout(location = 3) in vec4 i_model0;
layout(location = 4) in vec4 i_model1;
layout(location = 5) in vec4 i_model2;
layout(location = 6) in vec4 i_model3;
layout(location = 7) in vec4 i_color;      // base colour rgb, opacity
layout(location = 8) in vec4 i_emissive;   // emissive rgb (linear, may exceed 1), roughness
layout(location = 9) in vec4 i_params;     // metallic, unused x3

uniform mat4 u_view_proj;

out vec3 v_world;
out vec3 v_normal;
out vec4 v_color;
out vec4 v_emissive;
out float v_metallic;

void main() {
    mat4 model = mat4(i_model0, i_model1, i_model2, i_model3);
    vec4 world = model * vec4(in_position, 1.0);
    // inverse-transpose keeps normals right under non-uniform scale (boxes of any size)
    mat3 normal_matrix = transpose(inverse(mat3(model)));
    v_world = world.xyz;
    v_normal = normal_matrix * in_normal;
    v_color = vec4(i_color.rgb * in_color, i_color.a);
    v_emissive = i_emissive;
    v_metallic = i_params.x;
    gl_Position = u_view_proj * world;
}
