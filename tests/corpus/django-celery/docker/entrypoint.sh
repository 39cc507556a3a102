#!/bin/sh
# Wait for the database, then run the given command (gunicorn, celery, manage.py ...).
set -e
python - <<'PY'
import os, socket, time, urllib.parse
url = urllib.parse.urlsplit(os.environ["DATABASE_URL"])
for _ in range(60):
    try:
        socket.create_connection((url.hostname, url.port or 5432), timeout=2).close()
        break
    except OSError:
        time.sleep(1)
PY
exec "$@"
