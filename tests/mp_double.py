"""A local stand-in for the Materials Project API: serves recorded summary documents over HTTP on
127.0.0.1 so the real mp-api client code runs in tests without the network.

It answers ``/heartbeat`` and ``/materials/summary/`` (filters: ``formula``, ``chemsys``,
``energy_above_hull_min/max``, ``_skip``/``_limit``, ``_fields``), and records every request path and
the API key header it received.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

DOCS = json.loads((Path(__file__).parent / "data" / "mp_summary_docs.json").read_text())["docs"]


def _elements(doc: dict[str, Any]) -> set[str]:
    return {site["species"][0]["element"] for site in doc["structure"]["sites"]}


class MPDouble:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str | None]] = []
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                url = urlparse(self.path)
                double.requests.append((self.path, self.headers.get("x-api-key")))
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path.rstrip("/").endswith("heartbeat"):
                    body: dict[str, Any] = {
                        "db_version": "2025.09.25",
                        "access_controlled_batch_ids": [],
                        "version": "0.86.3",
                    }
                elif "materials/summary" in url.path:
                    docs = DOCS
                    if "formula" in q:
                        docs = [d for d in docs if d["formula_pretty"] == q["formula"]]
                    if "chemsys" in q:
                        want = set(q["chemsys"].split("-"))
                        docs = [d for d in docs if _elements(d) == want]
                    lo = float(q.get("energy_above_hull_min", "-1e9"))
                    hi = float(q.get("energy_above_hull_max", "1e9"))
                    docs = [d for d in docs if lo <= d["energy_above_hull"] <= hi]
                    total = len(docs)
                    skip, limit = int(q.get("_skip", 0)), int(q.get("_limit", 1000))
                    docs = docs[skip : skip + limit]
                    if "_fields" in q:
                        fields = q["_fields"].split(",")
                        docs = [{k: v for k, v in d.items() if k in fields} for d in docs]
                    body = {"data": docs, "meta": {"total_doc": total}}
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def __enter__(self) -> MPDouble:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
