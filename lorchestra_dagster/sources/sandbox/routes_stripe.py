"""Stripe list routes (customers, invoices, payment_intents, refunds)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from lorchestra_dagster.sources.sandbox.state import SandboxState
from lorchestra_dagster.sources.sandbox.streams import STRIPE_RESOURCES
from lorchestra_dagster.sources.sandbox.wire import (
    data_endpoint,
    int_param,
    vendor_error,
)


# Stripe -----------------------------------------------------------------------------
@data_endpoint("stripe")
async def stripe_list(request: Request, state: SandboxState) -> Response:
    resource = request.path_params["resource"]
    stream = next((s for s, r in STRIPE_RESOURCES.items() if r == resource), None)
    if stream is None:
        return vendor_error("stripe", 404, f"Unrecognized request URL (GET: /v1/{resource}).")
    qp = request.query_params
    bounds = []
    for op, name in (("gt", "gt"), ("gte", "ge"), ("lt", "lt"), ("lte", "le")):
        if f"created[{op}]" in qp:
            bounds.append((name, float(qp[f"created[{op}]"])))
    if "created" in qp:
        bounds.append(("eq", float(qp["created"])))
    lo, hi = state.span(stream, "stripe", bounds)
    limit = int_param(qp.get("limit"), 10, 1, 100)
    if qp.get("starting_after"):
        pos = state.position(stream, "stripe", qp["starting_after"])
        if pos is None:
            return vendor_error("stripe", 400, f"No such object: '{qp['starting_after']}'")
        hi = max(lo, min(hi, pos))
    asc = state.sorted_stream(stream, "stripe")
    chunk = asc[max(lo, hi - limit) : hi][::-1]  # newest first, like Stripe
    return JSONResponse(
        {
            "object": "list",
            "url": f"/v1/{resource}",
            "has_more": hi - limit > lo,
            "data": [r[2] for r in chunk],
        }
    )
