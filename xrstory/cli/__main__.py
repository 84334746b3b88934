"""``python -m xrstory.cli``: the same command as the ``xrstory`` console script."""

from xrstory.cli import app

app()
