"""A three-hop call chain traced with the OpenTelemetry Python SDK, and a check of what
Sightline's Tempo API gives back.

Usage:
  otel_traces.py send grpc|http ENDPOINT TENANT COUNT
      Service "frontend" handles COUNT requests; each calls service "payments" (a client span
      in frontend, a server span in payments, the trace context carried across), and payments
      queries PostgreSQL through a client span with db.system. Every third request fails in
      the database call (error status on the database span and on payments' server span).
      Prints one JSON object: {"traces": [hex ids], "spans": n, "failed": n}. Exits non-zero
      if an export failed.
  otel_traces.py check URL TENANT
      GETs a Tempo /api/v2/traces/{id} URL and parses its "trace" into the OTLP TracesData
      message with the opentelemetry-proto package (the protobuf JSON mapping); prints
      {"spans": [{"name", "span_id", "parent_span_id", "service", "status"}...]}.
"""
import json
import sys
import urllib.request


def send(protocol, endpoint, tenant, count):
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import SpanKind, Status, StatusCode

    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        def exporter():
            return OTLPSpanExporter(endpoint=endpoint, insecure=True, headers={"x-scope-orgid": tenant})
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        def exporter():
            return OTLPSpanExporter(endpoint=endpoint, headers={"X-Scope-OrgID": tenant})

    failures = []

    class Checking:
        """Notices failed exports instead of trusting silence."""

        def __init__(self, inner):
            self.inner = inner

        def export(self, spans):
            result = self.inner.export(spans)
            if getattr(result, "name", result) != "SUCCESS":
                failures.append(result)
            return result

        def shutdown(self):
            return self.inner.shutdown()

        def force_flush(self, timeout_millis=30000):
            return True

    def provider(service):
        p = TracerProvider(resource=Resource.create({"service.name": service, "service.namespace": "finance"}))
        p.add_span_processor(SimpleSpanProcessor(Checking(exporter())))
        return p

    frontend_provider = provider("frontend")
    payments_provider = provider("payments")
    frontend = frontend_provider.get_tracer("frontend-http")
    payments = payments_provider.get_tracer("payments-http")

    traces, spans, failed = [], 0, 0
    for i in range(count):
        fail = i % 3 == 2
        with frontend.start_as_current_span("GET /checkout", kind=SpanKind.SERVER) as root:
            root.set_attribute("http.request.method", "GET")
            root.set_attribute("http.route", "/checkout")
            with frontend.start_as_current_span("POST /pay", kind=SpanKind.CLIENT) as call:
                call.set_attribute("server.address", "payments")
                call.set_attribute("http.request.method", "POST")
                # The context crosses the process boundary as a W3C traceparent would.
                carried = trace.set_span_in_context(call)
                with payments.start_as_current_span("POST /pay", kind=SpanKind.SERVER, context=carried) as server:
                    server.set_attribute("http.route", "/pay")
                    with payments.start_as_current_span("SELECT accounts", kind=SpanKind.CLIENT) as db:
                        db.set_attribute("db.system", "postgresql")
                        db.set_attribute("db.name", "ledger")
                        if fail:
                            db.set_status(Status(StatusCode.ERROR, "deadlock detected"))
                            server.set_status(Status(StatusCode.ERROR, "database error"))
                            server.set_attribute("http.response.status_code", 500)
                        else:
                            server.set_attribute("http.response.status_code", 200)
            traces.append(format(root.get_span_context().trace_id, "032x"))
        spans += 4
        failed += fail
    frontend_provider.shutdown()
    payments_provider.shutdown()
    if failures:
        print(f"exports failed: {failures}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps({"traces": traces, "spans": spans, "failed": failed}))


def check(url, tenant):
    from google.protobuf import json_format
    from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

    request = urllib.request.Request(url, headers={"X-Scope-OrgID": tenant})
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.load(response)
    data = json_format.ParseDict(body["trace"], TracesData())
    out = []
    for rs in data.resource_spans:
        service = next(a.value.string_value for a in rs.resource.attributes if a.key == "service.name")
        for ss in rs.scope_spans:
            for s in ss.spans:
                out.append(
                    {
                        "name": s.name,
                        "trace_id": s.trace_id.hex(),
                        "span_id": s.span_id.hex(),
                        "parent_span_id": s.parent_span_id.hex(),
                        "service": service,
                        "kind": s.kind,
                        "status": s.status.code,
                    }
                )
    print(json.dumps({"spans": out}))


if __name__ == "__main__":
    if sys.argv[1] == "send":
        send(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f"unknown command {sys.argv[1]!r}")
