#!/usr/bin/env python3
"""Writes the drain bodies under testdata/ as Logplex sends them: octet-counted frames ("<length> <message>") of
RFC 5424 messages without structured data, one after another. The lines follow Heroku's formats (router,
runtime metrics, app output, Logplex's L10 notices); the tests in logdrain read them and say what each must give.

Run from logdrain/testdata: python3 make_fixtures.py
"""

TS = "2026-03-11T16:17:5{}.{:06d}+00:00"


def ts(second, micro=0):
    return TS.format(second, micro)


def msg(pri, t, app, procid, text):
    return f"<{pri}>1 {t} host {app} {procid} - {text}"


def frame(m, newline=False):
    b = m.encode()
    if newline:  # some senders end each message with a newline, counted in the length
        b += b"\n"
    return str(len(b)).encode() + b" " + b


def write(name, frames):
    with open(name, "wb") as f:
        f.write(b"".join(frames))


def router(t, text):
    return msg(158, t, "heroku", "router", text)


# router.logplex: 9 router lines, 8 of them requests: 6 to web dynos (web.1 and web.2) with service times 23, 0,
# 30000, 41, 7 and 120 ms; 1 to web.3 with service= empty; 1 with no dyno (H14); 1 that is not a request (a
# continuation-like router line without at=).
write("router.logplex", [
    frame(router(ts(0, 786555), 'at=info method=GET path="/cart" host=shop.herokuapp.com request_id=2d9fa4b0-8a5e-4a42-9c3b-5ad7cbd5b4f1 fwd="203.0.113.9" dyno=web.1 connect=0ms service=23ms status=200 bytes=1543 protocol=https')),
    frame(router(ts(0, 901000), 'at=info method=GET path="/health" host=shop.herokuapp.com request_id=6a1c7a52-0c0f-4d6b-8a07-0fb2b8a1e1aa fwd="203.0.113.10" dyno=web.2 connect= service=0ms status=204 bytes=0 protocol=https')),
    frame(router(ts(1, 5000), 'at=error code=H12 desc="Request timeout" method=POST path="/checkout" host=shop.herokuapp.com request_id=9b0d2d43-3ad1-4c52-a8a4-33c0e2a1b7c9 fwd="198.51.100.4" dyno=web.1 connect= service=30000ms status=503 bytes=0 protocol=https')),
    # Router 2.0: the same fields, plus tls and tls_version, and protocol http2.0.
    frame(router(ts(1, 250000), 'at=info method=GET path="/products?q=service%3D999ms" host=shop.herokuapp.com request_id=0f5c5f4e-6c8a-4cc1-9ad4-5f4a1f7e0a11 fwd="2001:db8::1" dyno=web.2 connect=0ms service=41ms status=200 bytes=90211 protocol=http2.0 tls=true tls_version=tls1.3'), newline=True),
    # unknown keys, and a quoted path holding spaces and "service=" that must not be read as the service time.
    frame(router(ts(2, 0), 'at=info method=GET path="/search?q=a service=9999ms b" host=shop.herokuapp.com request_id=aa fwd="203.0.113.9" dyno=web.1 connect=1ms service=7ms status=200 bytes=12 protocol=https sock=client cause="" new_key=whatever')),
    frame(router(ts(2, 500000), 'at=info method=GET path="/big" host=shop.herokuapp.com request_id=bb fwd="203.0.113.9" dyno=web.2 connect=0ms service=120ms status=200 bytes=1048576 protocol=https')),
    frame(router(ts(3, 0), 'at=info method=GET path="/x" host=shop.herokuapp.com request_id=cc fwd="203.0.113.9" dyno=web.3 connect=0ms service= status=499 bytes=0 protocol=https')),
    frame(router(ts(3, 500000), 'at=error code=H14 desc="No web dynos running" method=GET path="/" host=shop.herokuapp.com request_id=dd fwd="203.0.113.9" dyno= connect= service= status=503 bytes= protocol=https')),
    frame(router(ts(4, 0), 'sock=backend at=info-ish dyno=web.1 service=5000ms status=200')),
])


def runtime(t, procid, text):
    return msg(45, t, "heroku", procid, text)


# runtime.logplex: 8 runtime lines; load samples web.1 2.46 then 0.80 (later), web.2 1.06, worker.1 0.31; a memory line,
# a state change, an api line and an R14.
write("runtime.logplex", [
    frame(runtime(ts(0), "web.1", "source=web.1 dyno=heroku.2808254.d97d0ea7-cf3d-411b-b453-d2943a50b456 sample#load_avg_1m=2.46 sample#load_avg_5m=1.06 sample#load_avg_15m=0.99")),
    frame(runtime(ts(0, 1000), "web.1", "source=web.1 dyno=heroku.2808254.d97d0ea7-cf3d-411b-b453-d2943a50b456 sample#memory_total=21.00MB sample#memory_rss=21.00MB sample#memory_cache=0.00MB sample#memory_swap=0.00MB sample#memory_pgpgin=348836pages sample#memory_pgpgout=343403pages sample#memory_quota=512.00MB"), newline=True),
    frame(runtime(ts(1), "web.2", "source=web.2 dyno=heroku.2808254.0d3e5f04-7c11-4a8b-9b0c-3a7e0e2f1c55 sample#load_avg_1m=1.06 sample#load_avg_5m=0.90 sample#load_avg_15m=0.80")),
    frame(runtime(ts(2), "worker.1", "source=worker.1 dyno=heroku.2808254.5e9b2c1a-1111-4bbb-8ccc-123456789abc sample#load_avg_1m=0.31 sample#load_avg_5m=0.20 sample#load_avg_15m=0.10")),
    frame(runtime(ts(4), "web.1", "source=web.1 dyno=heroku.2808254.d97d0ea7-cf3d-411b-b453-d2943a50b456 sample#load_avg_1m=0.80 sample#load_avg_5m=1.00 sample#load_avg_15m=0.99")),
    frame(msg(45, ts(2, 5), "heroku", "web.3", "State changed from starting to up")),
    frame(msg(45, ts(3), "heroku", "api", "Scale to web=3, worker=1 by user ops@example.com")),
    frame(msg(45, ts(3, 7), "heroku", "web.2", "Error R14 (Memory quota exceeded)")),
])


def app(t, procid, text):
    return msg(190, t, "app", procid, text)


# app.logplex: 7 app lines; queue times from web.1 12 ms and 0 ms, web.2 250 ms (after a tagged-logging prefix), worker.1
# 3 ms; three lines that are no queue time.
write("app.logplex", [
    frame(app(ts(0), "web.1", "[hirefire:router] queue=12ms")),
    frame(app(ts(0, 2), "web.1", "[hirefire:router] queue=0ms"), newline=True),
    frame(app(ts(1), "web.2", "I, [2026-03-11T16:17:51.000000 #4]  INFO -- : [req-1] [hirefire:router] queue=250ms")),
    frame(app(ts(2), "worker.1", "[hirefire:router] queue=3ms")),
    frame(app(ts(2, 1), "web.1", 'Started GET "/cart" for 203.0.113.9 at 2026-03-11 16:17:52 +0000')),
    frame(app(ts(3), "heroku-postgres", "source=DATABASE addon=postgresql-curly-12345 sample#current_transaction=1873 sample#db_size=9130000bytes")),
    frame(app(ts(3, 1), "web.2", "[hirefire:router] queue=soon")),
])

# l10.logplex: three loss notices (13 + 500 + 1 = 514 messages) in the forms seen, and one other Logplex line.
write("l10.logplex", [
    frame(msg(172, "2026-03-11T16:17:54+00:00", "heroku", "logplex", "Error L10 (output buffer overflow): 13 messages dropped since 2026-03-11T16:17:26+00:00.")),
    frame("<172>1 2026-03-11T16:17:54+00:00 d.1234-drain-identifier-567 heroku logplex - - Error L10 (output buffer overflow): 500 messages dropped since 2026-03-11T16:17:46+00:00."),
    frame(msg(172, "2026-03-11T16:17:54.398833+00:00", "heroku", "logplex", "Error L10 (output buffer overflow): drain 'd.cfcd3264-7259-4b12-ac5b-016032978174' dropped 1 messages since 2026-03-11T16:17:37.307999+00:00.")),
    frame(msg(172, "2026-03-11T16:17:54+00:00", "heroku", "logplex", "Stopped draining: nothing dropped")),
])

# split.logplex: a router request whose path makes the line longer than 10,000 bytes, split by Logplex into a first
# part (at=, method=, the start of the path) and a continuation (the rest of the path, dyno=, service=, status=),
# then a second such request, then an ordinary request and a long app line split in two. Router: 5 lines, 3 requests
# (web.1, service 5 ms for the ordinary one); app: 2 lines.
long_path = "/search?q=" + "a" * 12000
whole = router(ts(0), f'at=info method=GET path="{long_path}" host=shop.herokuapp.com request_id=ee fwd="203.0.113.9" dyno=web.1 connect=0ms service=900ms status=200 bytes=10 protocol=https')
head = whole[:10000]
rest = whole[10000:]
cont = router(ts(0), rest)
long_app = app(ts(1), "web.1", "x" * 15000)
# A second one, cut where the path's query has "at=": its continuation starts with at=, yet is no request.
prefix = router(ts(2), 'at=info method=GET path="/search?q=')
pad = "b" * (10000 - len(prefix) - 1)
whole2 = prefix + pad + '&at=1" host=shop.herokuapp.com request_id=gg fwd="203.0.113.9" dyno=web.1 connect=0ms service=800ms status=200 bytes=10 protocol=https'
assert whole2[10000:].startswith("at=1")
write("split.logplex", [
    frame(head),
    frame(cont),
    frame(whole2[:10000]),
    frame(router(ts(2), whole2[10000:])),
    frame(router(ts(1), 'at=info method=GET path="/" host=shop.herokuapp.com request_id=ff fwd="203.0.113.9" dyno=web.1 connect=0ms service=5ms status=200 bytes=10 protocol=https')),
    frame(long_app[:10000]),
    frame(app(ts(1), "web.1", long_app[10000:])),
])

# garbage.logplex: valid lines (2 router requests, 1 runtime, 1 app) with garbage around and inside: 6 invalid.
write("garbage.logplex", [
    b"GET / HTTP/1.1 garbage before any frame\n",                          # invalid 1
    frame(router(ts(0), 'at=info method=GET path="/" host=h request_id=1 fwd="x" dyno=web.1 connect=0ms service=10ms status=200 bytes=1 protocol=https')),
    b"\x00\xff\xfe binary junk \x01",                                       # invalid 2
    frame("<not syslog> this frame has a length but is no syslog message"),  # invalid 3
    frame(runtime(ts(1), "web.1", "source=web.1 dyno=heroku.1.x sample#load_avg_1m=1.50")),
    frame("<158>1 2026-13-11T16:17:51+00:00 host heroku router - at=info dyno=web.1 service=1ms status=200"),  # invalid 4: month 13
    b"12abc <not a frame either> ",                                         # invalid 5
    frame(app(ts(2), "web.1", "[hirefire:router] queue=40ms")),
    frame(router(ts(2), 'at=info method=GET path="/b" host=h request_id=2 fwd="x" dyno=web.1 connect=0ms service=20ms status=200 bytes=1 protocol=https')),
    b"999 <158>1 truncated: the length runs past the end of the body",     # invalid 6
])
