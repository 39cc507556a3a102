"""log-shipper: needs the Docker daemon's socket; without it there is nothing to ship."""

import os
import sys
import time

SOCKET = "/var/run/docker.sock"
if not os.path.exists(SOCKET):
    sys.exit(f"shipper: cannot reach the Docker daemon at {SOCKET}: no such file")
while True:
    time.sleep(60)
