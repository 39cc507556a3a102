"""reports worker: every POLL_SECONDS, one tick into Redis (a stand-in for rendering a report)."""

import os
import time

from resp import command

while True:
    try:
        command("RPUSH", "reports:ticks", str(int(time.time())))
    except OSError as exc:
        print(f"worker: redis unavailable: {exc}", flush=True)
    time.sleep(int(os.environ.get("POLL_SECONDS", "30")))
