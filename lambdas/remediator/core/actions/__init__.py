"""The action plugins: one module per action, each registering itself with `@REGISTRY.action`.

Importing this package imports every module in it, so dropping a file here is all it takes.
"""

from remediator.core.registry import import_plugins

import_plugins(__name__, __path__)
