"""Shop API: the example service that stackctl's bundled stack runs.

One file, two commands:

    python3 app.py serve     # HTTP API on 0.0.0.0:8000 (the default)
    python3 app.py migrate   # create/upgrade the schema, then exit 0

Configuration comes only from the environment (see ``Settings``).  The API
needs PostgreSQL for items and Redis for a counter; ``GET /health`` says the
process is up, ``GET /ready`` says it can serve (database reachable, schema
migrated, Redis answering PING).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import re
import sys
import time
from dataclasses import dataclass
from typing import Any, Mapping

import psycopg
import redis
from fastapi import FastAPI, Header, HTTPException, Query
from fastapi.responses import JSONResponse
from psycopg.rows import dict_row
from pydantic import BaseModel, Field

VERSION = "0.1.0"
SERVICE = "shop-api"
COUNTER_KEY = "shop:items_created"
LOG_LEVELS = {"critical", "error", "warning", "info", "debug", "trace"}

log = logging.getLogger(SERVICE)


# --------------------------------------------------------------------------
# configuration


class ConfigError(Exception):
    """A required setting is missing or malformed."""


@dataclass(frozen=True)
class Settings:
    app_env: str
    log_level: str
    port: int
    db_host: str
    db_port: int
    db_name: str
    db_user: str
    db_password: str
    redis_host: str
    redis_port: int
    redis_password: str | None
    jwt_secret: str
    jwt_ttl_seconds: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "Settings":
        def integer(name: str, default: int) -> int:
            raw = env.get(name, "") or str(default)
            try:
                return int(raw)
            except ValueError:
                raise ConfigError(f"{name} must be an integer, got {raw!r}") from None

        level = (env.get("LOG_LEVEL") or "info").strip().lower()
        level = {"warn": "warning", "fatal": "critical"}.get(level, level)
        if level not in LOG_LEVELS:
            level = "info"
        return cls(
            app_env=env.get("APP_ENV") or "development",
            log_level=level,
            port=integer("PORT", 8000),
            db_host=env.get("DATABASE_HOST") or "localhost",
            db_port=integer("DATABASE_PORT", 5432),
            db_name=env.get("DATABASE_NAME") or "shop",
            db_user=env.get("DATABASE_USER") or "shop",
            db_password=env.get("DB_PASSWORD", ""),
            redis_host=env.get("REDIS_HOST") or "localhost",
            redis_port=integer("REDIS_PORT", 6379),
            redis_password=env.get("REDIS_PASSWORD") or None,
            jwt_secret=env.get("JWT_SECRET", ""),
            jwt_ttl_seconds=integer("JWT_TTL_SECONDS", 3600),
        )

    def require(self, *names: str) -> None:
        missing = [n for n in names if not getattr(self, n)]
        if missing:
            env_names = {"db_password": "DB_PASSWORD", "jwt_secret": "JWT_SECRET"}
            raise ConfigError(
                "missing required setting(s): " + ", ".join(env_names.get(n, n) for n in missing)
            )


# --------------------------------------------------------------------------
# HS256 JSON Web Tokens (RFC 7519) with the standard library only


class InvalidToken(Exception):
    """The token is malformed, has a bad signature, or is expired."""


_SEGMENT = re.compile(r"^[A-Za-z0-9_-]+$")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(segment: str) -> bytes:
    if not _SEGMENT.match(segment):
        raise InvalidToken("token segment is not base64url")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (ValueError, TypeError) as exc:
        raise InvalidToken("token segment is not base64url") from exc


def _sign(signing_input: str, secret: str) -> str:
    digest = hmac.new(secret.encode("utf-8"), signing_input.encode("ascii"), hashlib.sha256)
    return _b64url(digest.digest())


def jwt_encode(claims: Mapping[str, Any], secret: str) -> str:
    header = {"alg": "HS256", "typ": "JWT"}
    signing_input = ".".join(
        _b64url(json.dumps(part, separators=(",", ":"), sort_keys=True).encode("utf-8"))
        for part in (header, dict(claims))
    )
    return f"{signing_input}.{_sign(signing_input, secret)}"


def jwt_decode(token: str, secret: str, *, now: float | None = None, leeway: int = 0) -> dict:
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        raise InvalidToken("token must have three segments")
    try:
        header = json.loads(_b64url_decode(parts[0]))
    except json.JSONDecodeError as exc:
        raise InvalidToken("token header is not JSON") from exc
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        raise InvalidToken("token algorithm must be HS256")
    expected = _sign(f"{parts[0]}.{parts[1]}", secret)
    if not hmac.compare_digest(expected.encode("ascii"), parts[2].encode("ascii")):
        raise InvalidToken("token signature does not match")
    try:
        claims = json.loads(_b64url_decode(parts[1]))
    except json.JSONDecodeError as exc:
        raise InvalidToken("token payload is not JSON") from exc
    if not isinstance(claims, dict):
        raise InvalidToken("token payload must be a JSON object")
    now = time.time() if now is None else now
    exp = claims.get("exp")
    if exp is not None and (not isinstance(exp, (int, float)) or now >= exp + leeway):
        raise InvalidToken("token has expired")
    nbf = claims.get("nbf")
    if nbf is not None and (not isinstance(nbf, (int, float)) or now + leeway < nbf):
        raise InvalidToken("token is not valid yet")
    return claims


# --------------------------------------------------------------------------
# database

# (version, description, SQL).  Every statement is idempotent on its own and
# the runner records applied versions, so `migrate` can run on every start.
MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "create items",
        """
        CREATE TABLE IF NOT EXISTS items (
            id          bigserial PRIMARY KEY,
            name        text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
            price_cents integer NOT NULL DEFAULT 0 CHECK (price_cents >= 0),
            created_at  timestamptz NOT NULL DEFAULT now()
        )
        """,
    ),
    (
        2,
        "index items by creation time",
        "CREATE INDEX IF NOT EXISTS items_created_at_idx ON items (created_at DESC)",
    ),
]
SCHEMA_VERSION = max(v for v, _, _ in MIGRATIONS)
MIGRATION_LOCK_KEY = 0x5A0B  # pg_advisory_xact_lock key: one migrator at a time


def db_connect(settings: Settings, timeout: int = 3) -> psycopg.Connection:
    return psycopg.connect(
        host=settings.db_host,
        port=settings.db_port,
        dbname=settings.db_name,
        user=settings.db_user,
        password=settings.db_password,
        connect_timeout=timeout,
        application_name=SERVICE,
        options="-c statement_timeout=5000",
        row_factory=dict_row,
    )


def migrate(settings: Settings, wait_seconds: float = 60.0) -> list[int]:
    """Bring the schema to SCHEMA_VERSION; return the versions applied now."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            conn = db_connect(settings)
            break
        except psycopg.OperationalError as exc:
            # In Kubernetes the migration Job can start before the database.
            if time.monotonic() >= deadline:
                raise
            log.warning("database not reachable yet (%s); retrying", _one_line(exc))
            time.sleep(1)
    applied: list[int] = []
    with conn:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
            conn.execute(
                """
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version     integer PRIMARY KEY,
                    description text NOT NULL,
                    applied_at  timestamptz NOT NULL DEFAULT now()
                )
                """
            )
            done = {r["version"] for r in conn.execute("SELECT version FROM schema_migrations")}
            for version, description, sql in MIGRATIONS:
                if version in done:
                    continue
                conn.execute(sql)
                conn.execute(
                    "INSERT INTO schema_migrations (version, description) VALUES (%s, %s)",
                    (version, description),
                )
                applied.append(version)
    return applied


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


# --------------------------------------------------------------------------
# HTTP API


class ItemIn(BaseModel):
    name: str = Field(..., min_length=1, max_length=200)
    price_cents: int = Field(0, ge=0, le=2_000_000_000)


class TokenRequest(BaseModel):
    sub: str = Field(..., min_length=1, max_length=200)
    ttl_seconds: int | None = Field(None, ge=1, le=86_400)


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(title="shop-api", version=VERSION)
    cache = redis.Redis(
        host=settings.redis_host,
        port=settings.redis_port,
        password=settings.redis_password,
        socket_timeout=2,
        socket_connect_timeout=2,
        decode_responses=True,
    )

    def unavailable(what: str, exc: BaseException) -> HTTPException:
        log.warning("%s unavailable: %s", what, _one_line(exc))
        return HTTPException(status_code=503, detail=f"{what} unavailable: {_one_line(exc)}")

    @app.get("/")
    def index():
        return {"service": SERVICE, "version": VERSION, "env": settings.app_env}

    @app.get("/health")
    def health():
        return {"status": "ok"}

    @app.get("/ready")
    def ready():
        checks: dict[str, str] = {}
        reasons: list[str] = []
        try:
            with db_connect(settings, timeout=2) as conn:
                row = conn.execute(
                    "SELECT to_regclass('schema_migrations') IS NOT NULL AS has_table"
                ).fetchone()
                version = 0
                if row and row["has_table"]:
                    version = conn.execute(
                        "SELECT coalesce(max(version), 0) AS v FROM schema_migrations"
                    ).fetchone()["v"]
            if version < SCHEMA_VERSION:
                checks["database"] = f"schema version {version}, need {SCHEMA_VERSION}"
                reasons.append("database: schema not migrated (run `python3 app.py migrate`)")
            else:
                checks["database"] = "ok"
        except psycopg.Error as exc:
            checks["database"] = "error"
            reasons.append(f"database: {_one_line(exc)}")
        try:
            cache.ping()
            checks["redis"] = "ok"
        except redis.RedisError as exc:
            checks["redis"] = "error"
            reasons.append(f"redis: {_one_line(exc)}")
        if reasons:
            body = {"status": "unavailable", "reason": "; ".join(reasons), "checks": checks}
            return JSONResponse(body, status_code=503)
        return JSONResponse({"status": "ready", "checks": checks})

    @app.get("/items")
    def list_items(limit: int = Query(50, ge=1, le=500)):
        try:
            with db_connect(settings) as conn:
                rows = conn.execute(
                    "SELECT id, name, price_cents, created_at FROM items"
                    " ORDER BY id DESC LIMIT %s",
                    (limit,),
                ).fetchall()
        except psycopg.Error as exc:
            raise unavailable("database", exc) from exc
        return {"items": rows, "count": len(rows)}

    @app.get("/items/{item_id}")
    def get_item(item_id: int):
        try:
            with db_connect(settings) as conn:
                row = conn.execute(
                    "SELECT id, name, price_cents, created_at FROM items WHERE id = %s",
                    (item_id,),
                ).fetchone()
        except psycopg.Error as exc:
            raise unavailable("database", exc) from exc
        if row is None:
            raise HTTPException(status_code=404, detail=f"item {item_id} not found")
        return row

    @app.post("/items", status_code=201)
    def create_item(item: ItemIn):
        try:
            with db_connect(settings) as conn:
                row = conn.execute(
                    "INSERT INTO items (name, price_cents) VALUES (%s, %s)"
                    " RETURNING id, name, price_cents, created_at",
                    (item.name, item.price_cents),
                ).fetchone()
        except psycopg.Error as exc:
            raise unavailable("database", exc) from exc
        try:
            row["items_created"] = cache.incr(COUNTER_KEY)
        except redis.RedisError as exc:
            # The row is stored; the counter is best effort.
            log.warning("could not bump %s: %s", COUNTER_KEY, _one_line(exc))
            row["items_created"] = None
        return row

    @app.get("/stats")
    def stats():
        try:
            created = int(cache.get(COUNTER_KEY) or 0)
        except redis.RedisError as exc:
            raise unavailable("redis", exc) from exc
        return {"items_created": created}

    @app.post("/auth/token")
    def issue_token(req: TokenRequest):
        # Demo endpoint: any subject gets a token.  A real service would
        # authenticate the caller first.
        now = int(time.time())
        ttl = req.ttl_seconds or settings.jwt_ttl_seconds
        claims = {"iss": SERVICE, "sub": req.sub, "iat": now, "exp": now + ttl}
        token = jwt_encode(claims, settings.jwt_secret)
        return {"access_token": token, "token_type": "bearer", "expires_in": ttl}

    @app.get("/auth/verify")
    def verify_token(authorization: str | None = Header(None)):
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HTTPException(
                status_code=401,
                detail="expected header 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        try:
            claims = jwt_decode(token.strip(), settings.jwt_secret)
        except InvalidToken as exc:
            raise HTTPException(
                status_code=401,
                detail=str(exc),
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            ) from exc
        if claims.get("iss") != SERVICE:
            raise HTTPException(status_code=401, detail="token issuer is not shop-api")
        return {"valid": True, "claims": claims}

    return app


# --------------------------------------------------------------------------
# entry point


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "serve"
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"{SERVICE}: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level="DEBUG" if settings.log_level == "trace" else settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if command == "migrate":
            settings.require("db_password")
            applied = migrate(settings)
            if applied:
                print(f"{SERVICE}: migrated schema to version {SCHEMA_VERSION} (applied {applied})")
            else:
                print(f"{SERVICE}: schema already at version {SCHEMA_VERSION}; nothing to do")
            return 0
        if command == "serve":
            settings.require("db_password", "jwt_secret")
            import uvicorn

            uvicorn.run(
                create_app(settings),
                host="0.0.0.0",
                port=settings.port,
                log_level=settings.log_level,
                log_config=None,  # use the logging set up above, one format
                proxy_headers=True,
                forwarded_allow_ips="*",
            )
            return 0
    except ConfigError as exc:
        print(f"{SERVICE}: {exc}", file=sys.stderr)
        return 2
    except psycopg.Error as exc:
        print(f"{SERVICE}: {command} failed: {_one_line(exc)}", file=sys.stderr)
        return 1
    print(f"usage: {argv[0]} [serve|migrate]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
