"""The flask-stack web API: ``create_app`` builds it for any mode."""

__version__ = "1.0.0"

from .app import create_app

__all__ = ["__version__", "create_app"]
