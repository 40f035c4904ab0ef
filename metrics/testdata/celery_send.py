"""Sends tasks with the real Celery to a Redis broker, exactly as an app does. The task need not exist: send_task
sends by name. Usage: python3 celery_send.py REDIS_URL QUEUE:COUNT[:PRIORITY] ... (QUEUE "-" is the default queue)
"""
import sys

from celery import Celery

app = Celery("dynopilot_test", broker=sys.argv[1])
for spec in sys.argv[2:]:
    parts = spec.split(":")
    name, count = parts[0], int(parts[1])
    options = {}
    if name != "-":
        options["queue"] = name
    if len(parts) > 2:
        options["priority"] = int(parts[2])
    for i in range(count):
        app.send_task("app.tasks.resize_image", args=(i,), **options)
