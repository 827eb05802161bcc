// placeholder: filled by the CPU backend work
