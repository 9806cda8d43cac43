"""The symptom plugins: one module per symptom, each registering itself with `@REGISTRY.symptom`.

Importing this package imports every module in it, so dropping a file here is all it takes.
"""

from remediator.core.registry import import_plugins

import_plugins(__name__, __path__)
