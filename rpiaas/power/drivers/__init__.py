"""The power drivers, one module each; importing a module registers its driver by name."""
