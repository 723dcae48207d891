"""The master-side power meters, one module each; each registers itself by name
(``rpiaas.power.base.register_meter``)."""
