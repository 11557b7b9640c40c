"""A stand-in OpenTelemetry collector for benchmarks: accepts OTLP/HTTP trace exports (protobuf), answers 200 with
an empty ExportTraceServiceResponse, counts the requests and spans, and throws the spans away.

`GET /count` answers `{"requests": n, "spans": n, "bytes": n, "names": {span name: n}}`. Run it as
`python -m bench.otlp_sink PORT`; the benchmarks start it with `OtlpSink` (bench/common.py).
"""

from __future__ import annotations

import json
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

_counts = {"requests": 0, "spans": 0, "bytes": 0}
_names: Counter[str] = Counter()
_lock = threading.Lock()
_EMPTY = ExportTraceServiceResponse().SerializeToString()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a collector does

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        request = ExportTraceServiceRequest.FromString(body)
        names = Counter(
            span.name for resource in request.resource_spans for scope in resource.scope_spans for span in scope.spans
        )
        with _lock:
            _counts["requests"] += 1
            _counts["spans"] += names.total()
            _counts["bytes"] += len(body)
            _names.update(names)
        self._answer(200, "application/x-protobuf", _EMPTY)

    def do_GET(self) -> None:
        with _lock:
            body = json.dumps({**_counts, "names": dict(_names)}).encode()
        self._answer(200, "application/json", body)

    def _answer(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    port = int(sys.argv[1])
    server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
    print(f"otlp sink on 127.0.0.1:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
