"""`stackctl secrets rotate NAME --in-place` on the local engine: the database first, then the store,
then the dependents — no moment where the stored value and the database disagree for long, and no
service that was running is left stopped.

The steps (the why is in `stackctl.secrets.dbrotate`, which also holds the scripts):

1. find where the value lives (`dbrotate.find_targets`); each such service must be running;
2. under the store's lock: a new value from the generator, made valid inside each target (`switch`,
   run through the Engine API exec with the values in the exec's environment); only when all
   succeeded is it stored (a new version, the old one kept); a failure changes the targets that were
   already switched back and stores nothing;
3. render the env file and `up` the services that use the value and were running (the database
   included: its environment changed too), health-gated like any `up`; anything that was running
   and is not at the end is started again;
4. where the old value was kept valid for the switch (MySQL 8.0.14+, Redis 6+), drop it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from stackctl.errors import InputError
from stackctl.secrets.dbrotate import Target, exec_env, find_targets, finish_script, mask, run_in, switch_script

if TYPE_CHECKING:
    from stackctl.compose.project import ContainerState
    from stackctl.profile.types import Profile
    from stackctl.up.backend import UpResult
    from stackctl.up.startup import View


@dataclass
class InPlaceResult:
    name: str
    version: int
    was: int
    targets: list[Target]
    switched: dict[str, str] = field(default_factory=dict)  # service -> retained | changed
    rolled: list[str] = field(default_factory=list)  # services recreated/restarted
    up: UpResult | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.up is None or self.up.ok


def rotate_in_place(profile: Profile, name: str, *, timeout: float = 300.0,
                    view: Callable[[list[str]], View], note: Callable[[str], None] = lambda _m: None
                    ) -> InPlaceResult:
    """Change the value inside the running service(s) first, then store it, then roll the dependents
    (health-gated; a service that was running is running again at the end), then drop the old value."""
    from stackctl.pipeline import load_stack
    from stackctl.secrets import ops
    from stackctl.secrets.usage import services_using
    from stackctl.up import backend

    template = ops.template_if_any(profile)
    targets = find_targets(profile, template, [name])[name]
    if not targets:
        raise InputError(f"{name} initialises no data volume that stackctl knows of: a plain rotation is safe",
                         field="NAME", hint=f"run `stackctl secrets rotate {name}{_p(profile)}`")
    for t in targets:
        switch_script(t)  # fails now, before anything changed, when there is no way to do it
    for level, message in backend.render_env(profile):
        note(message if level == "info" else f"warning: {message}")
    loaded = load_stack(profile)
    project = backend.project_for(loaded)
    before = project.containers()
    running = {c.service for c in before if c.running}
    containers: dict[str, ContainerState] = {}
    for t in targets:
        found = next((c for c in before if c.service == t.service and c.running), None)
        if found is None:
            raise InputError(f"{t.service} is not running: the value can only be changed inside the running "
                             "database", field="NAME",
                             hint=f"start it (`stackctl up {t.service}{_p(profile)}`), then rotate again; "
                                  "nothing was changed")
        containers[t.service] = found

    def switch(t: Target, _undo: bool, old: str, new: str) -> tuple[bool, str, str]:
        code, output = run_in(project, containers[t.service], switch_script(t), exec_env(t, name, old, new))
        return code == 0, output, f" (exit {code})"

    stored = ops.switch_then_store(
        profile, name, targets, template, switch=switch,
        announce=lambda t: note(f"changing {name} inside {t.service} ({t.how})"))
    result = InPlaceResult(name, stored.version, stored.was, targets, stored.switched)
    old, new = stored.old, stored.new

    # roll the dependents: the services that use the value and were running (the database included:
    # its own environment changed too, and its data already holds the new value)
    users = services_using(profile, [name])[name] | {t.service for t in targets}
    to_roll = sorted(s for s in users if s in running)
    for level, message in backend.render_env(profile):
        note(message if level == "info" else f"warning: {message}")
    if to_roll:
        loaded = load_stack(profile)
        note(f"recreating what uses {name}: {', '.join(to_roll)}")
        result.up = backend.up(loaded, to_roll, timeout=timeout, view=view, note=note)
        result.rolled = to_roll
        stopped = sorted(running - {c.service for c in project.containers() if c.running})
        if stopped and result.up.ok:  # Compose stopped something it did not start again
            note(f"starting again what was running before: {', '.join(stopped)}")
            result.up = backend.up(loaded, stopped, timeout=timeout, view=view, note=note)
    if not result.ok:
        result.notes.append(f"{name} v{result.version} is stored and valid inside "
                            f"{', '.join(t.service for t in targets)}; fix the failure and run `stackctl up"
                            f"{_p(profile)}` (a `secrets rollback` would need an in-place change back)")
        return result
    # drop the old value where it was kept valid for the switch
    now = {c.service: c for c in project.containers() if c.running}
    for t in targets:
        script = finish_script(t)
        if script is None or result.switched.get(t.service) != "retained":
            continue
        same = now.get(t.service) is not None and now[t.service].id == containers[t.service].id
        if t.kind == "redis" and not same:
            continue  # recreated: it started with the new password only
        if t.service not in now:
            continue
        code, output = run_in(project, now[t.service], script, exec_env(t, name, old, new))
        if code != 0:
            result.notes.append(f"the old value of {name} is still accepted by {t.service}: "
                                f"{mask(output.strip(), old, new)[-300:]}")
        else:
            note(f"the old value of {name} no longer works in {t.service}")
    return result


def _p(profile: Profile) -> str:
    return f" -p {profile.name}" if profile.name != "local" else ""
