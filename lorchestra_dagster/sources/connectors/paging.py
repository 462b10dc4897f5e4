"""The one paging loop every vendor connector runs; a vendor only says how its cursor moves.

Vendors page three ways here: Google's ``nextPageToken`` / ``pageToken`` (Gmail's
message list, Forms' responses), OData's ``@odata.nextLink`` (Graph, Dataverse) and
Stripe's ``has_more`` / ``starting_after``. What differs is small, so it is data
(:class:`Paging`): where a page keeps its objects, how to read the next cursor from a
page, and how to put it into the next request. Everything else is here, once: page
numbers for errors, the retry policy around each page (a 429 or 5xx retries that page
only, never the pages already yielded), the malformed-page check, and laziness (the
next request goes out only when the previous page has been consumed, so a job holds
one page and a stopped consumer stops the requests).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar

from lorchestra_dagster.sources.connectors.base import FetchRequest, malformed_page, with_retries

#: A connector's description of one request (keyword arguments, a URL and its query, ...).
R = TypeVar("R")


@dataclass(frozen=True)
class Paging(Generic[R]):
    """How one vendor pages: the whole vendor-specific part of the paging loop.

    Attributes:
        items_key: the key of a page's object list.
        next_cursor: the next page's cursor read from a page, or None on the last page.
        with_cursor: the next request: the previous one with ``cursor`` put in.
        items_optional: a page may leave the list out when it is empty (Google does).
    """

    items_key: str
    next_cursor: Callable[[dict[str, Any]], Any]
    with_cursor: Callable[[R, str], R]
    items_optional: bool = False


def pages(
    req: FetchRequest,
    paging: Paging[R],
    first: R,
    send: Callable[[R, int], dict[str, Any]],
    *,
    base_url: str,
) -> Iterator[list[Any]]:
    """The object lists of every page, first to last, one request per page consumed.

    Args:
        req: the fetch (its stream, ``max_attempts`` and environment drive the retries).
        paging: how this vendor's cursor moves.
        first: the first page's request.
        send: one attempt at one page: ``send(request, page number)`` returns the parsed
            body or raises the shared error classes (transient ones are retried here).
        base_url: the address named when the vendor cannot be reached.
    """
    request = first
    page = 0
    while True:
        page += 1
        body = with_retries(
            partial(send, request, page),
            stream=req.stream,
            attempts=req.settings.max_attempts,
            base_url=base_url,
            env=req.env,
        )
        items = body.get(paging.items_key, [] if paging.items_optional else None)
        if not isinstance(items, list):
            raise malformed_page(req.stream, page, f"no {paging.items_key!r} list")
        yield items
        try:
            cursor = paging.next_cursor(body)
        except (KeyError, IndexError, TypeError):  # the cursor's field is missing or not an object
            raise malformed_page(req.stream, page, "no next-page cursor") from None
        if not cursor:
            return
        request = paging.with_cursor(request, str(cursor))
