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
import re
import threading
import time

from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from moto_extensions import EmulatorExtensions  # noqa: E402


# Diagnostics: MOTO_ATOMIC_STATS=<file> gets one line per DynamoDB request: wall time, request, ms waited
# for the lock, ms served, request and answer bytes.
STATS = open(os.environ["MOTO_ATOMIC_STATS"], "a", buffering=1) if os.environ.get("MOTO_ATOMIC_STATS") else None


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
            asked = time.perf_counter()
            self.lock.acquire(urgent)
            got = time.perf_counter()
            cpu = time.thread_time()
            try:
                # Materialize the body inside the lock: the write happens while it is produced.
                body = b"".join(self.app(environ, start_response))
            finally:
                self.lock.release()
                if STATS:
                    done = time.perf_counter()
                    what = target.split(".")[-1]
                    if what == "UpdateItem":
                        m = re.search(rb'"UpdateExpression":\s*"([A-Z]+ [^ ,"]{0,12})', request)
                        what += ":" + (m.group(1).decode() if m else "?")
                    STATS.write(f"{time.time():.3f} {what.replace(' ', '_')} {(got - asked) * 1000:.1f} {(done - got) * 1000:.1f} {len(request)} {len(body)} cpu {(time.thread_time() - cpu) * 1000:.1f}\n")
            return [body]
        if not STATS:
            return self.app(environ, start_response)
        # Diagnostics: the CPU time this thread spent on the request (the GIL makes moto's requests
        # share one core: the per-service sums say where it went).
        length = int(environ.get("CONTENT_LENGTH") or 0)
        request = environ["wsgi.input"].read(length) if length > 0 else b""
        environ["wsgi.input"] = io.BytesIO(request)
        cpu = time.thread_time()
        body = b"".join(self.app(environ, start_response))
        action = target.split(".")[-1] or re.sub(r"/[A-Za-z0-9]{10,}", "/ID", environ.get("PATH_INFO", "?"))
        query = environ.get("QUERY_STRING", "") + "&" + request[:200].decode("latin-1")
        m = re.search(r"Action=([A-Za-z]+)", query)
        if m:
            action = m.group(1)
        host = environ.get("HTTP_HOST", "").split(".")[0]
        STATS.write(f"{time.time():.3f} other:{host}:{action} cpu {(time.thread_time() - cpu) * 1000:.1f} {len(body)}\n")
        return [body]


def install_cheap_transactions():
    """TransactWriteItems without a copy of the whole table per item.

    moto backs up a transaction's table with copy.deepcopy once per item of the transaction, to roll
    back when a condition fails: a transaction of 100 writes on a table of a few thousand items takes
    seconds, where DynamoDB takes milliseconds (the controller writes the records of many groups in one
    transaction when they fail over together). Here, where DynamoDB requests run one at a time, the
    conditions are checked first on the current items; when every one holds, the writes are applied
    (each with its condition, which still holds) and only the items they write are backed up; when one
    fails, nothing has been written and the transaction is cancelled with the reasons moto gives (its
    own method would copy the whole table first: seconds each on a table of a few thousand items).
    Anything else (an operation on one item twice, an unexpected shape) goes to moto's own method,
    which answers exactly as before.
    """
    try:
        import copy
        from moto.dynamodb.exceptions import ConditionalCheckFailed, TransactionCanceledException
        from moto.dynamodb.models import DynamoDBBackend, get_filter_expression
    except ImportError:
        return
    moto_transaction = DynamoDBBackend.transact_write_items

    def original(self, transact_items, why="?"):
        if STATS:
            STATS.write(f"{time.time():.3f} transaction-by-moto {why.replace(' ', '_')} cpu 0\n")
        return moto_transaction(self, transact_items)

    def check_transaction(self, transact_items):
        """The writes to make and moto's cancellation reasons, or why moto's own method must answer."""
        plan, errors, seen = [], [], set()
        if len(transact_items) > 100:
            return "too many items"
        try:
            for item in transact_items:
                if len(item) != 1:
                    return "shape"
                op_type, op = next(iter(item.items()))
                if op_type not in ("ConditionCheck", "Update", "Delete", "Put"):
                    return "operation"
                table_name = op["TableName"]
                table = self.get_table(table_name)
                if op_type == "Put":
                    attrs = op["Item"]
                    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                    if table.range_key_attr is not None:
                        key[table.range_key_attr] = attrs[table.range_key_attr]
                else:
                    key = op["Key"]
                ident = (table_name, str(dict(sorted(key.items()))))
                if ident in seen:
                    return "twice"
                seen.add(ident)
                current = self.get_item(table_name, key)
                condition = op.get("ConditionExpression")
                if condition is not None and not get_filter_expression(
                    condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
                ).expr(current):
                    old = None
                    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                        old = current.to_json()["Attributes"]
                    errors.append(("ConditionalCheckFailed", str(ConditionalCheckFailed().message), old))
                    continue
                errors.append((None, None, None))
                # A condition check writes nothing: no backup (a heartbeat item is large to copy).
                if op_type != "ConditionCheck":
                    plan.append((op_type, op, table_name, key, copy.deepcopy(current)))
        except Exception as e:
            return f"check:{type(e).__name__}"
        return plan, errors

    def transact_write_items(self, transact_items):
        checked = check_transaction(self, transact_items)
        if isinstance(checked, str):
            return original(self, transact_items, checked)
        plan, errors = checked
        if any(code is not None for code, _, _ in errors):
            # Nothing was written: cancel as moto would, without its copy of the whole table.
            raise TransactionCanceledException(errors)

        applied = []
        try:
            for op_type, op, table_name, key, backup in plan:
                names = op.get("ExpressionAttributeNames")
                values = op.get("ExpressionAttributeValues")
                condition = op.get("ConditionExpression")
                if op_type == "Update":
                    self.update_item(
                        table_name,
                        key,
                        update_expression=op["UpdateExpression"],
                        expression_attribute_names=names,
                        expression_attribute_values=values,
                        condition_expression=condition,
                    )
                elif op_type == "Put":
                    self.put_item(
                        table_name,
                        op["Item"],
                        condition_expression=condition,
                        expression_attribute_names=names,
                        expression_attribute_values=values,
                    )
                elif op_type == "Delete":
                    self.delete_item(
                        table_name,
                        key,
                        condition_expression=condition,
                        expression_attribute_names=names,
                        expression_attribute_values=values,
                    )
                applied.append((table_name, key, backup))
        except Exception:
            # An invalid write part-way: put back what was written, then let moto answer the request.
            for table_name, key, backup in reversed(applied):
                if backup is None:
                    self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, backup.to_json()["Attributes"], overwrite=True)
            return original(self, transact_items, "write")

    DynamoDBBackend.transact_write_items = transact_write_items


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    install_cheap_transactions()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, EmulatorExtensions(SerializeDynamoDB(app)), threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
