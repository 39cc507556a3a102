"""`stackctl env check` / `stackctl env render` through the real CLI (in-process, NO_COLOR, COLUMNS=100)."""

from __future__ import annotations

import json
import stat

import pytest

from stackctl.compose import dotenv


@pytest.fixture
def proj(project):
    project.write("compose.yaml", """
        services:
          api:
            image: busybox
            environment:
              DB_PASSWORD: ${DB_PASSWORD:?}
              LOG_LEVEL: ${LOG_LEVEL}
              TOKEN: ${MISSING_TOKEN:?set it}
    """)
    project.write(".env.example", """
        # @secret password:24
        DB_PASSWORD=
        LOG_LEVEL=info
        ADMIN_EMAIL=your-email@example.com
    """)
    project.profile("local", "compose:\n  files: [compose.yaml]\n")
    return project


def _table(title: str, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """rich's boxed table, as printed into a pipe: no width limit, every line as wide as the table."""
    widths = [max(len(c) for c in col) for col in zip(header, *rows, strict=True)]

    def line(left: str, fill: str, sep: str, right: str) -> str:
        return left + sep.join(fill * (w + 2) for w in widths) + right

    def cells(bar: str, values: tuple[str, ...]) -> str:
        return bar + bar.join(f" {v.ljust(w)} " for v, w in zip(values, widths, strict=True)) + bar

    lines = [line("┏", "━", "┳", "┓"), cells("┃", header), line("┡", "━", "╇", "┩"),
             *(cells("│", r) for r in rows), line("└", "─", "┴", "┘")]
    return "\n".join([title.ljust(len(lines[0])), *lines]) + "\n"


# Piped (as here: stdout is not a terminal) a table has no width limit: one line per row, so
# `stackctl env check | grep MISSING_TOKEN` finds the whole row.
CHECK_TABLE = _table("env check (local)", ("problem", "key", "where", "detail"), [
    ("missing", "DB_PASSWORD", ".stackctl/secrets/local.json",
     "secret not in the store; run `stackctl secrets generate -p local`"),
    ("placeholder", "ADMIN_EMAIL", ".env.example:4", "looks like a placeholder, not a real value"),
    ("undefined", "MISSING_TOKEN", "compose.yaml: services.api.environment.TOKEN",
     "referenced (required (:?)) but defined nowhere (.env.example, .env, profile env.values, store)"),
])


def test_check_fails_with_a_table_then_passes(proj, cli) -> None:
    res = cli("env", "check")
    assert res.exit_code == 1
    assert res.stderr.strip().endswith("Error: env check failed for profile 'local': 3 problems")
    assert res.stdout == CHECK_TABLE  # the table is the product: compared whole (COLUMNS=100 does not apply to a pipe)

    data = json.loads(cli("env", "check", "-o", "json").stdout)
    assert data["ok"] is False
    assert sorted((p["kind"], p["key"]) for p in data["problems"]) == [
        ("missing", "DB_PASSWORD"), ("placeholder", "ADMIN_EMAIL"), ("undefined", "MISSING_TOKEN")]

    proj.profile("local", """
        compose:
          files: [compose.yaml]
        env:
          values:
            ADMIN_EMAIL: ops@shop.test
            MISSING_TOKEN: t0k3n
    """)
    proj.write(".env.example", """
        # @secret password:24
        DB_PASSWORD=
        LOG_LEVEL=info
        ADMIN_EMAIL=your-email@example.com
        MISSING_TOKEN=
    """)
    assert cli("secrets", "generate").exit_code == 0
    assert cli("env", "render").exit_code == 0  # without the env file Compose reads, not ok (issue 13)
    res = cli("env", "check")
    assert res.exit_code == 0, res
    assert res.stdout == ".env: ok (profile local)\n"


def test_render_writes_0600_and_reports_changed_names_only(proj, cli) -> None:
    proj.profile("local", """
        compose:
          files: [compose.yaml]
        env:
          values:
            ADMIN_EMAIL: "o'brien $HOME \\"quoted\\" # not a comment"
    """)
    cli("secrets", "generate")
    res = cli("env", "render")
    assert res.exit_code == 0, res
    assert res.stdout.startswith("wrote .env (3 changed: ADMIN_EMAIL, DB_PASSWORD, LOG_LEVEL)")
    env_file = proj.root / ".env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    values = dotenv.load(env_file)
    assert values["ADMIN_EMAIL"] == "o'brien $HOME \"quoted\" # not a comment"
    assert values["DB_PASSWORD"] not in res.stdout + res.stderr
    assert cli("env", "render").stdout == "unchanged: .env\n"
    dry = json.loads(cli("env", "render", "--dry-run", "-o", "json").stdout)
    assert dry["written"] is False and dry["sources"]["DB_PASSWORD"] == "store"
    assert dry["sources"]["ADMIN_EMAIL"] == "profile" and dry["sources"]["LOG_LEVEL"] == "template"


def test_render_without_secrets_says_what_to_run(proj, cli) -> None:
    res = cli("env", "render")
    assert res.exit_code == 1
    assert res.stderr.startswith("Error: cannot render .env: no value for required DB_PASSWORD "
                                 "(run `stackctl secrets generate -p local`)")
    assert not (proj.root / ".env").exists()


def test_bad_annotation_is_a_one_line_error(proj, cli) -> None:
    proj.write(".env.example", "LOG_LEVEL=info\n# @secret hexx:32\nJWT=\n")
    for args in (("env", "check"), ("env", "render"), ("secrets", "generate")):
        res = cli(*args)
        assert res.exit_code == 2, (args, res)
        assert res.stderr.startswith("Error: .env.example: line 3: unknown generator 'hexx:32' (known: hex:N, ")
        assert len(res.stderr.strip().splitlines()) == 1


def test_hand_edited_secret_blocks_render_until_imported(proj, cli) -> None:
    cli("secrets", "generate")
    (proj.root / ".env").write_text("DB_PASSWORD=my-own-password-1\nLOG_LEVEL=debug\n")
    res = cli("env", "render")
    assert res.exit_code == 1 and "holds values for DB_PASSWORD that are not in the store" in res.stderr
    assert "my-own-password-1" not in res.stderr
    assert cli("secrets", "import", "--overwrite").exit_code == 0
    assert cli("env", "render").exit_code == 0
    values = dotenv.load(proj.root / ".env")
    assert values["DB_PASSWORD"] == "my-own-password-1" and values["LOG_LEVEL"] == "debug"


def test_render_without_a_key_writes_nothing(proj, cli, tmp_path) -> None:
    cli("secrets", "generate")
    res = cli("env", "render", env={"XDG_CONFIG_HOME": str(tmp_path / "elsewhere")})
    assert res.exit_code == 1
    assert "no private key found to open this store (its recipients: " in res.stderr
    assert "stackctl secrets keygen" in res.stderr
    assert not (proj.root / ".env").exists()
    check = cli("env", "check", "-o", "json", env={"XDG_CONFIG_HOME": str(tmp_path / "elsewhere")})
    assert "secret values were not checked" in check.stderr


def test_up_renders_the_env_file_only_when_an_input_changed(proj, cli, monkeypatch) -> None:
    """`up` (through `up.render_env`) skips decrypting the store when nothing it reads changed, and
    still notices every change: a hand edit, a rotation, a new profile value."""
    from stackctl import up
    from stackctl.profile import load_profile
    from stackctl.secrets import envfile

    cli("secrets", "generate")
    calls = []
    real = envfile.render
    monkeypatch.setattr(envfile, "render", lambda p, **kw: calls.append(1) or real(p, **kw))

    def notes() -> list[tuple[str, str]]:
        return up.render_env(load_profile(proj.root, "local"))

    assert ("info", "rendered .env (ADMIN_EMAIL, DB_PASSWORD, LOG_LEVEL changed)") in notes() and len(calls) == 1
    assert notes() == [] and len(calls) == 1  # same inputs: not rendered again
    password = dotenv.load(proj.root / ".env")["DB_PASSWORD"]

    (proj.root / ".env").write_text((proj.root / ".env").read_text().replace(password, "typed-by-hand-1"))
    got = notes()
    assert len(calls) == 2 and "holds values for DB_PASSWORD that are not in the store" in got[0][1]
    (proj.root / ".env").unlink()
    assert notes()[-1][0] == "info" and len(calls) == 3  # written again from the store
    assert notes() == [] and len(calls) == 3

    assert cli("secrets", "rotate", "DB_PASSWORD").exit_code == 0
    assert notes() == [("info", "rendered .env (DB_PASSWORD changed)")] and len(calls) == 4
    assert dotenv.load(proj.root / ".env")["DB_PASSWORD"] != password

    proj.profile("local", "compose:\n  files: [compose.yaml]\nenv:\n  values: {LOG_LEVEL: debug}\n")
    assert notes() == [("info", "rendered .env (LOG_LEVEL changed)")] and len(calls) == 5
