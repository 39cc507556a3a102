"""queue-app worker: takes jobs off the queue."""

import time

import rq

while True:
    try:
        job = rq.call("LPOP", rq.QUEUE)
    except OSError as exc:
        print(f"worker: {exc}", flush=True)
        job = ""
    if not job or job == "$-1" or job.startswith("-"):
        time.sleep(1)
