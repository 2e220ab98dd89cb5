// Placeholder until the limits benchmark lands.
print("limits-benchmark: not built yet")
