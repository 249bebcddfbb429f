"""Sends metrics to Sightline with the OpenTelemetry Python SDK: a counter, an up-down
counter, a histogram and an observable gauge, each exported a few times.

Usage: otel_metrics.py grpc|http ENDPOINT SERVICE TENANT
Exits non-zero if the exporter reported a failure.
"""
import sys

from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExporter
from opentelemetry.sdk.resources import Resource

protocol, endpoint, service, tenant = sys.argv[1:5]

if protocol == "grpc":
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

    exporter = OTLPMetricExporter(endpoint=endpoint, insecure=True, headers={"x-scope-orgid": tenant})
else:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    exporter = OTLPMetricExporter(endpoint=endpoint, headers={"X-Scope-OrgID": tenant})

# Collect by hand and export each collection, checking every export's result instead of
# trusting a periodic reader's silence.
reader = InMemoryMetricReader()
provider = MeterProvider(
    resource=Resource.create(
        {"service.name": service, "service.namespace": "shop", "service.instance.id": "pod-1", "host.name": "node-7"}
    ),
    metric_readers=[reader],
)
meter = provider.get_meter("interop")
orders = meter.create_counter("shop.orders", unit="1", description="orders placed")
queue = meter.create_up_down_counter("shop.queue.depth", unit="{item}")
latency = meter.create_histogram("http.server.request.duration", unit="s")
temperature = {"value": 40.0}
meter.create_observable_gauge(
    "node.memory.usage",
    callbacks=[lambda options: [Observation(temperature["value"] * 1e6, {"state": "used"})]],
    unit="By",
)

for round_ in range(3):
    orders.add(5, {"payment": "card"})
    orders.add(2, {"payment": "cash"})
    queue.add(3)
    queue.add(-1)
    for v in (0.004, 0.02, 0.3, 1.7):
        latency.record(v, {"route": "/pay"})
    temperature["value"] += 1
    data = reader.get_metrics_data()
    result = exporter.export(data)
    if getattr(result, "name", result) != "SUCCESS":
        print(f"export {round_} failed: {result}", file=sys.stderr)
        sys.exit(1)
exporter.shutdown()
print("exported 3 rounds")
