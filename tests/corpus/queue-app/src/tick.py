"""queue-app scheduler tick (run every minute by the scheduler service): one periodic job."""

import rq

print("tick:", rq.call("RPUSH", rq.QUEUE, "periodic"), flush=True)
