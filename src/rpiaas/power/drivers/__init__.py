"""The power drivers, one module each; each registers itself by name (``rpiaas.power.base.register_driver``)."""
