"""`stackctl init` — placeholder."""


def init() -> None:
    """Scaffold profiles and an annotated .env.example from an existing Compose project."""
