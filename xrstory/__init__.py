"""xrstory: a runtime for spatial, spoken stories.

The layers live in sub-packages (see docs/ARCHITECTURE.md): ``story`` (scene files and the
story state), ``mind`` (the language model), ``voice`` (audio in and out), ``render``
(ModernGL), ``xr`` (display backends), ``director`` (beats and the player), ``runtime``
(the session), ``playthrough`` (scripted sessions), ``train`` (fine-tuning and evaluation).
"""

__version__ = "0.1.0"
