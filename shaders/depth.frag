#version 330 core
// Shadow map pass: depth only (the colour attachment-less framebuffer takes no output).
void main() {}
