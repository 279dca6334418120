"""The ``magspect`` command. Thin: each verb lives in its own module and imports heavy work lazily."""
