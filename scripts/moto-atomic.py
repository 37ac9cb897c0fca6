"""moto server whose DynamoDB requests run one at a time.

moto's threaded server evaluates a conditional write and applies it without a lock, so two
concurrent UpdateItem calls with `attribute_not_exists(pk)` can both succeed (seen with moto 5.2.1:
4 of 4 concurrent lock acquisitions won). Real DynamoDB applies each item write atomically. This
wrapper serializes DynamoDB requests (the other services stay concurrent) so that tests of
conditional writes and locks see DynamoDB's semantics. Same flags as moto_server: -H HOST -p PORT.
"""
import argparse
import os
import signal
import sys
import threading

from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app


class SerializeDynamoDB:
    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith("DynamoDB_") or target.startswith("DynamoDBStreams_"):
            with self.lock:
                # Materialize the body inside the lock: the write happens while it is produced.
                body = b"".join(self.app(environ, start_response))
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
    run_simple(args.host, args.port, SerializeDynamoDB(app), threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
