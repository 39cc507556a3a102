"""`stackctl env render` output, read by the real Compose CLI: every value byte-for-byte.

Hostile values go through each source render uses — the encrypted store (`secrets set --from-file`),
profile `env.values`, template defaults (hostile ones, and `${REF}` references), and config values
edited in the env file — then `docker compose config --format json` resolves them two ways: interpolated into
`environment:` (`${VAR}`) and loaded through `env_file:`. `config` prints every `$` as `$$`; that
escaping is undone before comparing.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from stackctl.secrets.generators import parse_spec

pytestmark = pytest.mark.docker

HOSTILE = [
    "plain",
    "",
    "a$b",
    "$HOME",
    "${HOME}",
    "${HOME:-fallback}",
    "$$",
    "\\$x",
    "'single quoted'",
    '"double quoted"',
    "mixed ' and \" quotes",
    "it's",
    "#starts-with-hash",
    "a #not a comment",
    "a# b",
    " leading space",
    "trailing space ",
    "  ",
    "multi\nline\nvalue",
    "ends with newline\n",
    "\\backslash\\in\\middle",
    "trailing backslash\\",
    "\\n literally",
    "tab\there",
    "cr\rlf\r\n",
    "bell\a and \x0b vtab \f ff",
    "=equals=in=value",
    "ünïcödé ✓ 日本",
    '"unbalanced',
    "'unbalanced",
    "export X=1",
    "K=V other=thing",
    "{{ braces }} ${",
]
HOSTILE.append(parse_spec("ed25519").generate())  # a multi-line PEM, made fresh: no key is committed


def _compose_config(root: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("S_", "P_", "E_", "T_", "REF_"))}
    proc = subprocess.run(["docker", "compose", "--project-directory", str(root), "-f", str(root / "compose.yaml"),
                           "config", "--format", "json"], capture_output=True, text=True, env=env, cwd=root)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _unescape(value: str) -> str:
    return value.replace("$$", "$")


def test_rendered_env_file_reads_back_byte_for_byte(project, cli) -> None:
    n = len(HOSTILE)
    template = ["# @secret hex:32", "S_00="]  # S_00 generated; S_01.. set by hand
    template += [f"# @secret\nS_{i:02d}=" for i in range(1, n)]
    template += [f"P_{i:02d}=template-default" for i in range(n)]
    template += [f"E_{i:02d}=to-be-edited" for i in range(n)]
    from stackctl.compose.dotenv import format_value

    template += [f"T_{i:02d}={format_value(v)}" for i, v in enumerate(HOSTILE)]  # template defaults
    template += [
        'REF_URL="postgres://app:${S_00}@db:5432/app?x=${P_03}"',
        "REF_LITERAL='no ${S_00} here'",
        'REF_DEFAULT="${UNSET_IN_FILE:-dflt}"',
    ]
    project.write(".env.example", "\n".join(template) + "\n")
    names = [f"S_{i:02d}" for i in range(n)] + [f"P_{i:02d}" for i in range(n)] + [f"E_{i:02d}" for i in range(n)]
    names += [f"T_{i:02d}" for i in range(n)] + ["REF_URL", "REF_LITERAL", "REF_DEFAULT"]
    env_lines = "\n".join(f"      {k}: ${{{k}}}" for k in names)
    project.write("compose.yaml", f"services:\n  interp:\n    image: busybox\n    environment:\n{env_lines}\n"
                                  "  envfile:\n    image: busybox\n    env_file: [.env]\n")
    profile_values = "\n".join(f"    P_{i:02d}: {json.dumps(v)}" for i, v in enumerate(HOSTILE))
    project.profile("local", f"compose:\n  files: [compose.yaml]\nenv:\n  values:\n{profile_values}\n")

    res = cli("secrets", "generate")
    assert res.exit_code == 0 and "no generator for S_01, S_02" in res.stderr  # reported, not fatal
    for i, value in enumerate(HOSTILE[1:], start=1):
        if value == "":
            continue
        src = project.root / f"v{i}.txt"
        src.write_bytes(value.encode("utf-8"))
        res = cli("secrets", "set", f"S_{i:02d}", "--from-file", str(src))
        assert res.exit_code == 0, res
        src.unlink()
    # S_01 is the empty value: a secret cannot be empty, so mark it optional-by-absence via the template
    project.write(".env.example", "\n".join(template).replace("# @secret\nS_01=", "# @secret @optional\nS_01=")
                  + "\n")
    res = cli("env", "render")
    assert res.exit_code == 0, res

    # edit the E_ values in the env file the way a person would: with the dotenv writer's spelling
    env_file = project.root / ".env"
    text = env_file.read_text()
    for i, value in enumerate(HOSTILE):
        text = text.replace(f"E_{i:02d}=to-be-edited\n", f"E_{i:02d}={format_value(value)}\n")
    env_file.write_text(text)
    res = cli("env", "render")  # edited config values survive a re-render, in their source form
    assert res.exit_code == 0, res

    from stackctl.profile import load_profile
    from stackctl.secrets import secret_values

    secrets = secret_values(load_profile(project.root, "local"))
    expected: dict[str, str] = {}
    for i, value in enumerate(HOSTILE):
        if i == 0:
            expected["S_00"] = secrets["S_00"]
        elif i != 1:
            expected[f"S_{i:02d}"] = value
        expected[f"P_{i:02d}"] = value
        expected[f"E_{i:02d}"] = value
        expected[f"T_{i:02d}"] = value
    expected["REF_URL"] = f"postgres://app:{secrets['S_00']}@db:5432/app?x={HOSTILE[3]}"
    expected["REF_LITERAL"] = "no ${S_00} here"
    expected["REF_DEFAULT"] = "dflt"

    config = _compose_config(project.root)
    interp = {k: _unescape(v) for k, v in config["services"]["interp"]["environment"].items() if v is not None}
    from_file = {k: _unescape(v) for k, v in config["services"]["envfile"]["environment"].items()}
    mismatches = []
    for key, want in expected.items():
        if interp.get(key) != want:
            mismatches.append(("interp", key, want, interp.get(key)))
        if from_file.get(key) != want:
            mismatches.append(("env_file", key, want, from_file.get(key)))
    assert not mismatches, mismatches[:5]
    assert "S_01" not in from_file  # optional, not set: no line, so Compose sees it unset
    assert len(expected) == 4 * n - 1 + 3
