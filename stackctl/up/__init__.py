"""`stackctl up` and its siblings (`restart`, `status`, `down`, `logs`): the stack on the local Docker
engine, through Docker Compose.

    backend.py   the commands' work: create with Compose, start health-gated, report
    plan.py      which services, in which order, each waiting on what (pure)
    ports.py     published host ports already taken, found before anything starts (who holds them, which
                 variable sets them)
    creating.py  what Compose does while it creates and recreates containers (from the engine's events)
    startup.py   the health-gated start-up itself (one worker per container, events, probes)
    view.py      the live progress shown while it runs
"""

from stackctl.up.backend import (
    DEFAULT_TIMEOUT,
    Early,
    ServiceStatus,
    UpResult,
    create_early,
    down,
    logs,
    render_env,
    restart,
    status,
    up,
)

__all__ = ["DEFAULT_TIMEOUT", "Early", "ServiceStatus", "UpResult", "create_early", "down", "logs", "render_env",
           "restart", "status", "up"]
