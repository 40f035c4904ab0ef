"""Enqueues jobs with the real RQ, exactly as an app does, with RQ's clock moved back so that the jobs look as old
as the test needs. The function need not exist: RQ stores its dotted path. Usage:
python3 rq_enqueue.py REDIS_URL QUEUE:COUNT:SECONDS_AGO ...
"""
import datetime
import sys

import redis
import rq.queue
from rq import Queue

real_utcnow = rq.queue.utcnow
seconds_ago = 0.0
rq.queue.utcnow = lambda: real_utcnow() - datetime.timedelta(seconds=seconds_ago)

connection = redis.Redis.from_url(sys.argv[1])
for spec in sys.argv[2:]:
    name, count, ago = spec.split(":")
    seconds_ago = float(ago)
    queue = Queue(name, connection=connection)
    for i in range(int(count)):
        queue.enqueue_call(func="app.jobs.resize_image", args=(i,))
