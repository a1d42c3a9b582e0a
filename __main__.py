"""devpi-registry: one devpi registry per stack. All logic lives in the ``components`` package."""

from components.program import define_registry

define_registry()
