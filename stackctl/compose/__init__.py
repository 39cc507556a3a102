"""Everything Compose: reading a project the way Docker Compose does, and the two ways to the engine.

    loader.py         `docker compose config --format json` → the stack model (Compose is the oracle)
    dotenv.py         `.env` files as Compose reads them (parity-tested against Compose)
    interpolation.py  Compose's `$VAR` / `${VAR:-default}` syntax, without Compose
    yaml.py           the raw Compose YAML, for the few places that need the text as written
    cli.py            the one module that runs the docker CLI (and the Compose plugin)
    engine.py         the one Docker Engine API client (the local unix socket, stdlib only)
    project.py        `LocalProject`: one Compose project's containers, for the `up` backend

Only `cli.py` and `engine.py` talk to Docker; the others are pure or call those two.
"""
