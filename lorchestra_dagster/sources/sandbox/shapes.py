"""Builders of vendor-native objects, one function per wire shape.

Each function returns exactly what the vendor's API returns for one object, so
connectors, raw rows and the canonize transforms see the real shapes. See
docs/sources.md for the fields.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

FV = "@OData.Community.Display.V1.FormattedValue"
LOOKUP = "@Microsoft.Dynamics.CRM.lookuplogicalname"


def iso(ts: datetime) -> str:
    """Dataverse/Graph timestamp: UTC, second precision, ``Z`` suffix."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_nano(ts: datetime) -> str:
    """Google timestamp (Forms createTime): UTC with fractional seconds."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def formatted_dt(ts: datetime) -> str:
    return ts.strftime("%-m/%-d/%Y %-I:%M %p")


def b64url(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii")


def gmail_message(
    *,
    msg_id: str,
    thread_id: str,
    history_id: int,
    ts: datetime,
    sender: str,
    to: str,
    subject: str,
    text: str,
    html: str,
    unread: bool,
) -> dict[str, Any]:
    """users.messages.get?format=full: headers plus a multipart/alternative payload."""
    date_hdr = ts.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
    text_b = text.encode("utf-8")
    html_b = html.encode("utf-8")
    labels = ["INBOX", "CATEGORY_PERSONAL"] + (["UNREAD"] if unread else [])
    return {
        "id": msg_id,
        "threadId": thread_id,
        "labelIds": labels,
        "snippet": text[:100],
        "historyId": str(history_id),
        "internalDate": str(int(ts.timestamp() * 1000)),
        "sizeEstimate": len(text_b) + len(html_b) + 600,
        "payload": {
            "partId": "",
            "mimeType": "multipart/alternative",
            "filename": "",
            "headers": [
                {"name": "From", "value": sender},
                {"name": "To", "value": to},
                {"name": "Subject", "value": subject},
                {"name": "Date", "value": date_hdr},
                {"name": "Message-ID", "value": f"<{msg_id}@mail.example.com>"},
                {"name": "MIME-Version", "value": "1.0"},
                {
                    "name": "Content-Type",
                    "value": f'multipart/alternative; boundary="b{msg_id[:8]}"',
                },
            ],
            "body": {"size": 0},
            "parts": [
                {
                    "partId": "0",
                    "mimeType": "text/plain",
                    "filename": "",
                    "headers": [{"name": "Content-Type", "value": 'text/plain; charset="UTF-8"'}],
                    "body": {"size": len(text_b), "data": b64url(text)},
                },
                {
                    "partId": "1",
                    "mimeType": "text/html",
                    "filename": "",
                    "headers": [{"name": "Content-Type", "value": 'text/html; charset="UTF-8"'}],
                    "body": {"size": len(html_b), "data": b64url(html)},
                },
            ],
        },
    }


def _addr(name: str, address: str) -> dict[str, Any]:
    return {"emailAddress": {"name": name, "address": address}}


def graph_message(
    *,
    msg_id: str,
    conversation_id: str,
    ts: datetime,
    sender_name: str,
    sender: str,
    to_name: str,
    to: str,
    subject: str,
    html: str,
    preview: str,
    is_read: bool,
    change_key: str,
) -> dict[str, Any]:
    """Microsoft Graph ``message`` resource as listed by /users/{id}/messages."""
    return {
        "@odata.etag": f'W/"{change_key}"',
        "id": msg_id,
        "createdDateTime": iso(ts),
        "lastModifiedDateTime": iso(ts),
        "changeKey": change_key,
        "categories": [],
        "receivedDateTime": iso(ts),
        "sentDateTime": iso(ts),
        "hasAttachments": False,
        "internetMessageId": f"<{msg_id[-20:]}@mail.example.org>",
        "subject": subject,
        "bodyPreview": preview[:255],
        "importance": "normal",
        "parentFolderId": "AAMkAGInbox=",
        "conversationId": conversation_id,
        "isDeliveryReceiptRequested": False,
        "isReadReceiptRequested": False,
        "isRead": is_read,
        "isDraft": False,
        "webLink": f"https://outlook.office365.com/owa/?ItemID={msg_id}",
        "inferenceClassification": "focused",
        "body": {"contentType": "html", "content": html},
        "sender": _addr(sender_name, sender),
        "from": _addr(sender_name, sender),
        "toRecipients": [_addr(to_name, to)],
        "ccRecipients": [],
        "bccRecipients": [],
        "replyTo": [],
        "flag": {"flagStatus": "notFlagged"},
    }


def option(row: dict[str, Any], column: str, value: int | None, labels: dict[int, str]) -> None:
    """Set an option-set column and its formatted-value annotation."""
    row[column] = value
    if value is not None:
        row[column + FV] = labels[value]


def dv_timestamps(row: dict[str, Any], created: datetime, modified: datetime) -> None:
    row["createdon"] = iso(created)
    row["createdon" + FV] = formatted_dt(created)
    row["modifiedon"] = iso(modified)
    row["modifiedon" + FV] = formatted_dt(modified)


def dv_lookup(row: dict[str, Any], column: str, target_id: str, entity: str, name: str) -> None:
    """A lookup column as the Web API returns it: ``_x_value`` plus annotations."""
    key = f"_{column}_value"
    row[key] = target_id
    row[key + FV] = name
    row[key + LOOKUP] = entity
