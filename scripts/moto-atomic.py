"""moto server whose DynamoDB requests run one at a time.

moto's threaded server evaluates a conditional write and applies it without a lock, so two
concurrent UpdateItem calls with `attribute_not_exists(pk)` can both succeed (seen with moto 5.2.1:
4 of 4 concurrent lock acquisitions won). Real DynamoDB applies each item write atomically. This
wrapper serializes DynamoDB requests (the other services stay concurrent) so that tests of
conditional writes and locks see DynamoDB's semantics. Same flags as moto_server: -H HOST -p PORT.

Serializing makes every request wait behind all the others, which real DynamoDB never does for
unrelated items: a burst of controller writes (many groups failing over at once) would delay the
agents' lease renewals past their per-call timeout and make them fence themselves for a reason that
only exists in the emulator. Heartbeat writes (PutItem of a HEARTBEAT item) therefore go first.

It also answers two calls moto lacks, iam:SimulatePrincipalPolicy and ssm:DescribeInstanceInformation
(`failoverctl doctor` checks the deployed role and SSM registration with them): see moto_extensions.py.
"""
import argparse
import io
import os
import signal
import sys
import threading

from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from moto_extensions import EmulatorExtensions  # noqa: E402


class PriorityLock:
    """A lock whose urgent waiters are served before the others."""

    def __init__(self):
        self.cond = threading.Condition()
        self.busy = False
        self.urgent_waiting = 0

    def acquire(self, urgent):
        with self.cond:
            if urgent:
                self.urgent_waiting += 1
            while self.busy or (not urgent and self.urgent_waiting > 0):
                self.cond.wait()
            if urgent:
                self.urgent_waiting -= 1
            self.busy = True

    def release(self):
        with self.cond:
            self.busy = False
            self.cond.notify_all()


class SerializeDynamoDB:
    def __init__(self, app):
        self.app = app
        self.lock = PriorityLock()

    def __call__(self, environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith("DynamoDB_") or target.startswith("DynamoDBStreams_"):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            request = environ["wsgi.input"].read(length) if length > 0 else b""
            environ["wsgi.input"] = io.BytesIO(request)
            urgent = target.endswith(".PutItem") and b'"HEARTBEAT"' in request
            self.lock.acquire(urgent)
            try:
                # Materialize the body inside the lock: the write happens while it is produced.
                body = b"".join(self.app(environ, start_response))
            finally:
                self.lock.release()
            return [body]
        return self.app(environ, start_response)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, EmulatorExtensions(SerializeDynamoDB(app)), threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
