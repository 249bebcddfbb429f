"""Sends N log records to Sightline with the OpenTelemetry Python SDK.

Usage: otel_logs.py grpc|http ENDPOINT SERVICE COUNT TENANT
Prints the number of records emitted; exits non-zero if the exporter reported a failure.
"""
import logging
import sys

from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource

protocol, endpoint, service, count, tenant = sys.argv[1:6]
count = int(count)

if protocol == "grpc":
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

    exporter = OTLPLogExporter(endpoint=endpoint, insecure=True, headers={"x-scope-orgid": tenant})
else:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

    exporter = OTLPLogExporter(endpoint=endpoint, headers={"X-Scope-OrgID": tenant})

failures = []


class CheckingExporter:
    """Wraps the real exporter to notice failed exports instead of trusting silence."""

    def __init__(self, inner):
        self.inner = inner

    def export(self, batch):
        result = self.inner.export(batch)
        # The result enum was renamed across SDK versions; its member name was not.
        if getattr(result, "name", result) != "SUCCESS":
            failures.append(result)
        return result

    def shutdown(self):
        return self.inner.shutdown()

    def force_flush(self, timeout_millis=30000):
        return True


resource = Resource.create(
    {
        "service.name": service,
        "service.namespace": "finance",
        "deployment.environment": "test",
        "k8s.pod.name": f"{service}-pod-0",
        "host.name": "node-a",
        "process.pid": 4242,
    }
)
provider = LoggerProvider(resource=resource)
provider.add_log_record_processor(
    BatchLogRecordProcessor(CheckingExporter(exporter), max_queue_size=count + 1, max_export_batch_size=512)
)
handler = LoggingHandler(level=logging.DEBUG, logger_provider=provider)
log = logging.getLogger(f"interop.{service}")
log.setLevel(logging.DEBUG)
log.propagate = False
log.addHandler(handler)

for i in range(count):
    if i % 10 == 0:
        log.error("payment %d failed for order ord-%d", i, i, extra={"order.id": f"ord-{i}"})
    else:
        log.info("request %d served in %dms", i, i % 250, extra={"order.id": f"ord-{i}"})

provider.force_flush()
provider.shutdown()
if failures:
    print(f"export failures: {failures}", file=sys.stderr)
    sys.exit(1)
print(count)
