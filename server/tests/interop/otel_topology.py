"""A three-tier estate reporting through the OpenTelemetry Python SDK: the topology test's
real client.

Usage:
  otel_topology.py send OTLP_HTTP_BASE BUDGET_B_VERSION
      Four service instances on Kubernetes pods, on two nodes in two zones of one region,
      each with the resource attributes the SDK's Kubernetes resource detection would give:
        gateway    gateway-7d4-a   node-1  zone-a
        budget     budget-5c8-a    node-1  zone-a   (version 1.0)
        budget     budget-5c8-b    node-2  zone-b   (version BUDGET_B_VERSION)
        treasury   treasury-6f9-a  node-2  zone-b
      Three requests: gateway's server span calls budget and treasury (client spans, the
      trace context carried to their server spans); budget queries PostgreSQL (db.name
      "ledger") and Redis, treasury queries PostgreSQL. Every instance also sends a log record
      and a counter (OTLP/HTTP protobuf, to OTLP_HTTP_BASE/v1/{traces,logs,metrics}).
      Prints {"spans": n, "logs": n, "metrics": n}; exits non-zero if any export failed.
"""
import json
import logging
import sys

INSTANCES = [
    ("gateway", "gateway-7d4-a", "node-1", "zone-a"),
    ("budget", "budget-5c8-a", "node-1", "zone-a"),
    ("budget", "budget-5c8-b", "node-2", "zone-b"),
    ("treasury", "treasury-6f9-a", "node-2", "zone-b"),
]


def send(base, budget_b_version):
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import SpanKind

    failures = []
    counts = {"spans": 0, "logs": 0, "metrics": 0}

    class Checking:
        """Counts what was exported and notices failures instead of trusting silence."""

        def __init__(self, inner, what):
            self.inner = inner
            self.what = what

        def export(self, items, *args, **kwargs):
            result = self.inner.export(items, *args, **kwargs)
            if getattr(result, "name", str(result)) != "SUCCESS":
                failures.append((self.what, result))
            elif self.what != "metrics":
                counts[self.what] += len(items)
            else:
                counts["metrics"] += 1
            return result

        def __getattr__(self, name):
            return getattr(self.inner, name)

    providers = {}
    for service, pod, node, zone in INSTANCES:
        version = budget_b_version if pod == "budget-5c8-b" else "1.0"
        resource = Resource.create(
            {
                "service.name": service,
                "service.version": version,
                "service.instance.id": pod,
                "deployment.environment": "production",
                "k8s.cluster.name": "prod",
                "k8s.namespace.name": "fin",
                "k8s.deployment.name": service,
                "k8s.replicaset.name": pod.rsplit("-", 1)[0],
                "k8s.pod.name": pod,
                "k8s.node.name": node,
                "cloud.provider": "gov-cloud",
                "cloud.region": "region-1",
                "cloud.availability_zone": zone,
            }
        )
        tp = TracerProvider(resource=resource)
        tp.add_span_processor(
            SimpleSpanProcessor(Checking(OTLPSpanExporter(endpoint=f"{base}/v1/traces"), "spans"))
        )
        lp = LoggerProvider(resource=resource)
        lp.add_log_record_processor(
            SimpleLogRecordProcessor(Checking(OTLPLogExporter(endpoint=f"{base}/v1/logs"), "logs"))
        )
        reader = PeriodicExportingMetricReader(
            Checking(OTLPMetricExporter(endpoint=f"{base}/v1/metrics"), "metrics"),
            export_interval_millis=3_600_000,
        )
        mp = MeterProvider(resource=resource, metric_readers=[reader])
        providers[pod] = (tp, lp, mp)

    def tracer(pod):
        return providers[pod][0].get_tracer("topology-test")

    def call(client_pod, server_pod, name):
        client = tracer(client_pod)
        with client.start_as_current_span(f"call {name}", kind=SpanKind.CLIENT):
            server = tracer(server_pod)
            with server.start_as_current_span(f"handle {name}", kind=SpanKind.SERVER):
                yield

    def db(pod, system, **attrs):
        with tracer(pod).start_as_current_span(
            f"{system} query", kind=SpanKind.CLIENT, attributes={"db.system": system, **attrs}
        ):
            pass

    for i in range(3):
        budget_pod = "budget-5c8-a" if i % 2 == 0 else "budget-5c8-b"
        with tracer("gateway-7d4-a").start_as_current_span("GET /budget", kind=SpanKind.SERVER):
            for _ in call("gateway-7d4-a", budget_pod, "budget"):
                db(budget_pod, "postgresql", **{"db.name": "ledger", "server.address": "pg-1"})
                db(budget_pod, "redis", **{"server.address": "redis-1"})
            for _ in call("gateway-7d4-a", "treasury-6f9-a", "treasury"):
                db("treasury-6f9-a", "postgresql", **{"db.name": "ledger", "server.address": "pg-1"})

    for service, pod, _, _ in INSTANCES:
        tp, lp, mp = providers[pod]
        logger = logging.getLogger(f"topology.{pod}")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        logger.addHandler(LoggingHandler(level=logging.INFO, logger_provider=lp))
        logger.info("%s started", service)
        mp.get_meter("topology-test").create_counter("requests").add(3, {"route": "/"})
        for provider in (tp, lp, mp):
            provider.force_flush()
            provider.shutdown()

    if failures:
        print(json.dumps({"failures": [f"{w}: {r}" for w, r in failures]}))
        sys.exit(1)
    print(json.dumps(counts))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "send":
        send(sys.argv[2], sys.argv[3])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
