"""Where things are in the repository."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
WEB_DIR = REPO_ROOT / "services" / "web"
ENV_DIR = REPO_ROOT / ".env.d"
