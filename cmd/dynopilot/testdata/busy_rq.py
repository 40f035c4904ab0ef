"""An RQ app with one job that runs until the test lets it end, for dynopilot's busy-dyno tests.
  as a worker dyno:  python3 busy_rq.py work REDIS_URL QUEUE [NAME]   (NAME: `rq worker --name $DYNO`; none: RQ's random name)
  to enqueue a job:  python3 busy_rq.py enqueue REDIS_URL QUEUE KEY   (the job ends once the Redis key KEY exists)
"""
import os
import sys
import time

import redis
from rq import Queue, Worker


def hold(key):
    connection = redis.Redis.from_url(os.environ["BUSY_RQ_REDIS_URL"])
    deadline = time.time() + 180
    while connection.get(key) is None and time.time() < deadline:
        time.sleep(0.2)


if __name__ == "__main__":
    mode, url, queue = sys.argv[1:4]
    os.environ["BUSY_RQ_REDIS_URL"] = url
    connection = redis.Redis.from_url(url)
    if mode == "work":
        name = sys.argv[4] if len(sys.argv) > 4 else None
        Worker([Queue(queue, connection=connection)], connection=connection, name=name).work()
    else:
        Queue(queue, connection=connection).enqueue("busy_rq.hold", sys.argv[4], job_timeout=600)
