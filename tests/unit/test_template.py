"""`.env.example` annotations: what each spelling means, and the one-line error for each mistake."""

from __future__ import annotations

import textwrap

import pytest

from stackctl.errors import EnvError
from stackctl.secrets.template import parse_template


def parse(text: str):
    return parse_template(textwrap.dedent(text).lstrip("\n"), display=".env.example")


def test_annotations_above_and_inline() -> None:
    t = parse("""
        # Password of the application database user.
        # @secret password:24
        DB_PASSWORD=change_me
        JWT_SECRET="" # @secret hex:32

        # @secret ed25519
        SIGNING_KEY=
        # @public SIGNING_KEY
        PUBLIC_KEY=
        # set by hand
        # @secret
        STRIPE_KEY=
        SENTRY_DSN="" # @optional
        LOG_LEVEL=info # @config @required
        PLAIN=x
    """)
    by = {k.name: k for k in t}
    assert t.names == ["DB_PASSWORD", "JWT_SECRET", "SIGNING_KEY", "PUBLIC_KEY", "STRIPE_KEY", "SENTRY_DSN",
                       "LOG_LEVEL", "PLAIN"]
    assert by["DB_PASSWORD"].kind == "secret" and str(by["DB_PASSWORD"].generator) == "password:24"
    assert by["DB_PASSWORD"].raw == ""  # a secret's template value is never used
    assert by["DB_PASSWORD"].doc == ("Password of the application database user.", "@secret password:24")
    assert str(by["JWT_SECRET"].generator) == "hex:32"
    assert by["PUBLIC_KEY"].kind == "public" and by["PUBLIC_KEY"].public_of == "SIGNING_KEY"
    assert by["STRIPE_KEY"].kind == "secret" and by["STRIPE_KEY"].generator is None
    assert by["STRIPE_KEY"].type == "manual"
    assert by["SENTRY_DSN"].required is False and by["SENTRY_DSN"].kind == "config"
    assert by["LOG_LEVEL"].required is True and by["LOG_LEVEL"].raw == "info"
    assert by["PLAIN"].kind == "config" and by["PLAIN"].required is True
    assert t.secret_names == {"DB_PASSWORD", "JWT_SECRET", "SIGNING_KEY", "STRIPE_KEY"}


def test_documentation_comments_with_at_signs_are_not_annotations() -> None:
    t = parse("""
        # mail admin@example.com about this one
        # Annotations: see docs (this line does not start with @)
        ADMIN=root
    """)
    assert t.get("ADMIN").kind == "config"


def test_a_blank_line_detaches_a_comment() -> None:
    t = parse("""
        # @secret hex:32

        NOT_SECRET=x
    """)
    assert t.get("NOT_SECRET").kind == "config"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("A=1\n# @secret hexx:32\nKEY=\n",
         ".env.example: line 3: unknown generator 'hexx:32' (known: hex:N, base64:N"),
        ("# @secert hex:32\nKEY=\n", ".env.example: line 2: unknown annotation '@secert' on KEY"),
        ("KEY=x # @secret @config\n", "line 1: KEY is annotated both @secret and @config"),
        ("KEY=x # @required @optional\n", "line 1: KEY is annotated both @required and @optional"),
        ("KEY=x # @optional yes\n", "line 1: unexpected 'yes' after @optional on KEY"),
        ("PUB=x # @public\n", "line 1: @public on PUB needs the name of a key-pair secret"),
        ("S=x # @secret hex:32\nPUB=x # @public S\n", "line 2: @public S: S must be a key-pair secret"),
        ("A=1\nB=2\nA=3\n", "line 3: duplicate key A (first defined on line 1)"),
        ("KEY=   # @secret hex:32\n", "line 1: KEY: Compose reads `KEY= # @secret hex:32` as the value"),
        ("KEY= # the database host\n", "line 1: KEY: Compose reads"),
        ('KEY="unterminated\n', ".env.example: line 1: unterminated quoted value"),
    ],
)
def test_mistakes_name_file_and_line(text: str, message: str) -> None:
    with pytest.raises(EnvError) as err:
        parse_template(text, display=".env.example")
    assert message in str(err.value), str(err.value)


def test_a_hash_value_that_is_not_a_comment_is_fine() -> None:
    assert parse("COLOR=#ff0000\n").get("COLOR").raw == "#ff0000"


def test_config_keeps_source_form_for_rendering() -> None:
    t = parse("""
        URL="postgres://u:${DB_PASSWORD}@db/x"
        LIT='a $b'
        INHERITED
    """)
    assert t.get("URL").raw == "postgres://u:${DB_PASSWORD}@db/x" and t.get("URL").quote == '"'
    assert t.get("LIT").quote == "'"
    assert t.get("INHERITED").inherit is True


def test_scaffold_style_template_parses() -> None:
    # the header `stackctl init` writes mentions annotations; a blank line keeps them from binding
    t = parse("""
        # Annotations (see docs/secrets.md):
        #   @secret GENERATOR   a secret stackctl generates
        #   @required / @optional

        # Used by api.
        # @secret hex:32
        JWT_SECRET=
        # Used by api.
        # @optional
        API_PORT=8000
    """)
    assert t.get("JWT_SECRET").kind == "secret" and t.get("API_PORT").required is False
