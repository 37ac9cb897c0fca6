"""Two AWS calls moto 5.2.1 does not have, answered from moto's own state (used by moto-atomic.py).

- iam:SimulatePrincipalPolicy: moto stores roles and their policies but has no simulator. This one
  evaluates the role's inline and attached managed policies as IAM does for the request context
  given: an explicit Deny wins, else an Allow whose Action, Resource and Condition match, else an
  implicit deny. It covers what `failoverctl doctor` and the project's policies use: Action /
  NotAction, Resource / NotResource with * and ?, policy variables (${aws:...}, ${ec2:...}) from the
  context entries, and the String*, Arn*, Bool and Null operators with ForAllValues: / ForAnyValue:
  and ...IfExists. A key a condition needs but the context lacks is listed in MissingContextValues,
  as AWS does. Permission boundaries, SCPs and resource policies are not simulated.
- ssm:DescribeInstanceInformation: moto registers no managed instance. Here an instance is
  registered with SSM (PingStatus Online) when it is running and has an IAM instance profile, the
  two things an EC2 instance needs besides the SSM agent; stopped, it is ConnectionLost.

Checked against the documented behaviour of the real calls; the README's emulator section says what
differs (no boundaries, no SCPs, no resource-based policies; registration follows the instance
profile, not a running agent).
"""
import json
import re
import uuid
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

ACCOUNT = "123456789012"


def _account_of(arn):
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 and parts[4] else ACCOUNT


def _iam_backend(account):
    from moto.iam.models import iam_backends

    backends = iam_backends[account]
    for key in ("global", "aws"):
        try:
            return backends[key]
        except KeyError:
            continue
    return next(iter(backends.values()))


def _role_policies(arn):
    """The JSON documents of a role's inline and attached managed policies, with an id each."""
    backend = _iam_backend(_account_of(arn))
    name = arn.split("/")[-1]
    role = backend.get_role(name)
    out = []
    for policy_name, doc in role.policies.items():
        out.append((policy_name, "IAM Policy", doc if isinstance(doc, dict) else json.loads(doc)))
    for policy_arn, policy in role.managed_policies.items():
        version = next(v for v in policy.versions if v.is_default)
        doc = version.document
        out.append((policy_arn, "IAM Policy", doc if isinstance(doc, dict) else json.loads(doc)))
    return out


def _as_list(v):
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def _wildcard(pattern, value, case=True):
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case else re.IGNORECASE) is not None


def _substitute(text, context):
    """Policy variables: ${key} from the context (single-valued), ${*} ${?} ${$} escapes."""
    missing = []

    def repl(m):
        key = m.group(1)
        if key in ("*", "?", "$"):
            return key
        values = context.get(key.lower())
        if not values:
            missing.append(key)
            return "\x00"  # matches nothing
        return values[0]

    return re.sub(r"\$\{([^}]+)\}", repl, text), missing


def _string_match(op, pattern, value):
    if op in ("StringEquals", "ArnEquals"):
        return pattern == value
    if op == "StringEqualsIgnoreCase":
        return pattern.lower() == value.lower()
    if op in ("StringLike", "ArnLike"):
        return _wildcard(pattern, value)
    if op == "Bool":
        return pattern.lower() == value.lower()
    raise ValueError(op)


NEGATED = {"StringNotEquals": "StringEquals", "StringNotLike": "StringLike", "ArnNotEquals": "ArnEquals",
           "ArnNotLike": "ArnLike", "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase"}


def _condition_holds(condition, context, missing):
    for operator, keys in (condition or {}).items():
        qualifier, _, op = operator.rpartition(":")
        if_exists = op.endswith("IfExists")
        if if_exists:
            op = op[: -len("IfExists")]
        for key, raw in keys.items():
            patterns = []
            for p in _as_list(raw):
                p, vars_missing = _substitute(str(p), context)
                missing.extend(vars_missing)
                patterns.append(p)
            values = context.get(key.lower())
            if op == "Null":
                present = bool(values)
                if any((p.lower() == "true") == present for p in patterns):
                    return False
                continue
            if values is None:
                if qualifier == "ForAllValues" or if_exists:
                    continue
                missing.append(key)
                return False
            negated = op in NEGATED
            base = NEGATED.get(op, op)

            def matches(v):
                hit = any(_string_match(base, p, v) for p in patterns)
                return not hit if negated else hit

            if qualifier == "ForAllValues":
                ok = all(matches(v) for v in values)
            elif qualifier == "ForAnyValue":
                ok = any(matches(v) for v in values)
            else:
                ok = matches(values[0]) if len(values) == 1 else any(matches(v) for v in values)
            if not ok:
                return False
    return True


def _statement_applies(stmt, action, resource, context, missing):
    if "Action" in stmt and not any(_wildcard(a, action, case=False) for a in _as_list(stmt["Action"])):
        return False
    if "NotAction" in stmt and any(_wildcard(a, action, case=False) for a in _as_list(stmt["NotAction"])):
        return False
    resources = [_substitute(r, context)[0] for r in _as_list(stmt.get("Resource"))]
    not_resources = [_substitute(r, context)[0] for r in _as_list(stmt.get("NotResource"))]
    if "Resource" in stmt and not any(_wildcard(r, resource) for r in resources):
        return False
    if "NotResource" in stmt and any(_wildcard(r, resource) for r in not_resources):
        return False
    return _condition_holds(stmt.get("Condition"), context, missing)


def evaluate(policies, action, resource, context):
    allowed, denied, missing = [], [], []
    for policy_id, policy_type, doc in policies:
        for stmt in _as_list(doc.get("Statement")):
            if _statement_applies(stmt, action, resource, context, missing):
                (denied if stmt.get("Effect") == "Deny" else allowed).append((policy_id, policy_type))
    decision = "explicitDeny" if denied else "allowed" if allowed else "implicitDeny"
    return decision, (denied or allowed), sorted(set(missing))


def simulate_principal_policy(body):
    params = parse_qs(body.decode("utf-8"), keep_blank_values=True)
    get = lambda k: params.get(k, [None])[0]  # noqa: E731
    def members(prefix):
        # Prefix.member.N in the order of N (other parameters, e.g. Action, have no member index).
        found = []
        for k in params:
            m = re.fullmatch(re.escape(prefix) + r"\.member\.(\d+)", k)
            if m:
                found.append((int(m.group(1)), params[k][0]))
        return [v for _, v in sorted(found)]

    arn = get("PolicySourceArn")
    actions = members("ActionNames")
    resources = members("ResourceArns") or ["*"]
    context = {}
    for i in range(1, 1000):
        key = get(f"ContextEntries.member.{i}.ContextKeyName")
        if key is None:
            break
        values = [v for k, v in sorted(params.items()) if re.fullmatch(rf"ContextEntries\.member\.{i}\.ContextKeyValues\.member\.\d+", k) for v in v]
        context[key.lower()] = values
    try:
        policies = _role_policies(arn)
    except Exception:  # noqa: BLE001
        return 400, _iam_error("NoSuchEntity", f"The role with ARN {arn} cannot be found.")
    results = []
    for action in actions:
        for resource in resources:
            decision, matched, missing = evaluate(policies, action, resource, context)
            statements = "".join(
                f"<member><SourcePolicyId>{escape(pid)}</SourcePolicyId><SourcePolicyType>{ptype}</SourcePolicyType></member>"
                for pid, ptype in matched
            )
            missing_xml = "".join(f"<member>{escape(k)}</member>" for k in missing)
            results.append(
                f"<member><EvalActionName>{escape(action)}</EvalActionName><EvalResourceName>{escape(resource)}</EvalResourceName>"
                f"<EvalDecision>{decision}</EvalDecision><MatchedStatements>{statements}</MatchedStatements>"
                f"<MissingContextValues>{missing_xml}</MissingContextValues></member>"
            )
    xml = (
        '<SimulatePrincipalPolicyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><SimulatePrincipalPolicyResult>'
        f"<IsTruncated>false</IsTruncated><EvaluationResults>{''.join(results)}</EvaluationResults>"
        f"</SimulatePrincipalPolicyResult><ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
        "</SimulatePrincipalPolicyResponse>"
    )
    return 200, xml


def _iam_error(code, message):
    return (
        '<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type>'
        f"<Code>{code}</Code><Message>{escape(message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    )


def describe_instance_information(body, region):
    from moto.ec2.models import ec2_backends

    request = json.loads(body or b"{}")
    wanted = set()
    for f in request.get("Filters", []) + request.get("InstanceInformationFilterList", []):
        if f.get("Key") in ("InstanceIds", "InstanceIds".lower()) or f.get("key") == "InstanceIds":
            wanted.update(f.get("Values") or f.get("valueSet") or [])
    backend = ec2_backends[ACCOUNT][region]
    associations = getattr(backend, "iam_instance_profile_associations", {})
    out = []
    for reservation in backend.reservations.values():
        for instance in reservation.instances:
            if wanted and instance.id not in wanted:
                continue
            if instance.id not in associations:
                continue
            state = instance.state
            if state not in ("running", "stopped", "stopping"):
                continue
            out.append(
                {
                    "InstanceId": instance.id,
                    "PingStatus": "Online" if state == "running" else "ConnectionLost",
                    "PlatformType": "Linux",
                    "AgentVersion": "3.3.0.0",
                    "IsLatestVersion": True,
                    "ResourceType": "EC2Instance",
                    "IPAddress": instance.private_ip,
                }
            )
    return 200, json.dumps({"InstanceInformationList": out})


class EmulatorExtensions:
    """WSGI middleware answering the two calls above; everything else goes to moto."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        auth = environ.get("HTTP_AUTHORIZATION", "")
        scope = re.search(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/", auth)
        region, service = (scope.group(1), scope.group(2)) if scope else ("us-east-1", "")
        if target == "AmazonSSM.DescribeInstanceInformation":
            body = self._body(environ)
            status, text = describe_instance_information(body, region)
            return self._respond(start_response, status, text, "application/x-amz-json-1.1")
        if service == "iam" and environ.get("REQUEST_METHOD") == "POST":
            body = self._body(environ)
            if b"Action=SimulatePrincipalPolicy" in body:
                status, text = simulate_principal_policy(body)
                return self._respond(start_response, status, text, "text/xml")
            environ["wsgi.input"] = __import__("io").BytesIO(body)
        return self.app(environ, start_response)

    @staticmethod
    def _body(environ):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        return environ["wsgi.input"].read(length) if length > 0 else b""

    @staticmethod
    def _respond(start_response, status, text, content_type):
        data = text.encode("utf-8")
        start_response(
            f"{status} {'OK' if status == 200 else 'Bad Request'}",
            [("Content-Type", content_type), ("Content-Length", str(len(data)))],
        )
        return [data]
