"""The Stripe side of a client's story: customer, an invoice per session, payments, refunds."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any


class BillingStory:
    """Mixin of the practice generator; needs ``r``, ``p``, ``history`` and ``alnum``."""

    r: random.Random
    p: Any
    history: int

    def alnum(self, n: int) -> str:  # provided by the generator
        raise NotImplementedError

    def billing(
        self, c: dict[str, Any], intake: datetime, sessions: list[datetime], end: datetime
    ) -> None:
        r = self.r
        cus = "cus_" + self.alnum(14)
        self.p.streams["stripe_customers"].append(
            {
                "id": cus,
                "object": "customer",
                "address": None,
                "balance": 0,
                "created": int(intake.timestamp()),
                "currency": "usd",
                "default_source": None,
                "delinquent": False,
                "description": f"Client {c['index'] + 1}",
                "email": c["email"],
                "invoice_prefix": self.alnum(8).upper(),
                "invoice_settings": {
                    "custom_fields": None,
                    "default_payment_method": None,
                    "footer": None,
                },
                "livemode": False,
                "metadata": {"dataverse_contactid": c["id"]},
                "name": c["name"],
                "phone": None,
                "preferred_locales": [],
                "shipping": None,
                "tax_exempt": "none",
                "test_clock": None,
            }
        )
        for k, ts in enumerate(sessions, start=1):
            inv_ts = min(ts + timedelta(hours=3), end)
            amount = r.choice((15000, 15000, 18000, 22000))
            paid = (end - inv_ts).days > 3 or r.random() < 0.5
            inv, pi, ch = "in_" + self.alnum(24), "pi_" + self.alnum(24), "ch_" + self.alnum(24)
            # A few invoices are never paid (today.md's unpaid list has something to show).
            # Drawn from the invoice id, and the payment below is still drawn (then dropped),
            # so the rest of the practice is what it was.
            never_paid = k > 1 and random.Random(inv).random() < 0.06
            payments = self.p.streams["stripe_payment_intents"] if not never_paid else []
            refunds = self.p.streams["stripe_refunds"] if not never_paid else []
            drawn, paid = paid, paid and not never_paid
            self.p.streams["stripe_invoices"].append(
                {
                    "id": inv,
                    "object": "invoice",
                    "account_country": "US",
                    "amount_due": amount,
                    "amount_paid": amount if paid else 0,
                    "amount_remaining": 0 if paid else amount,
                    "attempt_count": 1 if paid else 0,
                    "collection_method": "send_invoice",
                    "created": int(inv_ts.timestamp()),
                    "currency": "usd",
                    "customer": cus,
                    "customer_email": c["email"],
                    "customer_name": c["name"],
                    "description": f"Session {k}",
                    "due_date": int((inv_ts + timedelta(days=14)).timestamp()),
                    "lines": {
                        "object": "list",
                        "data": [
                            {
                                "id": "il_" + self.alnum(24),
                                "object": "line_item",
                                "amount": amount,
                                "currency": "usd",
                                "description": "Psychotherapy session",
                                "quantity": 1,
                            }
                        ],
                        "has_more": False,
                        "total_count": 1,
                        "url": f"/v1/invoices/{inv}/lines",
                    },
                    "livemode": False,
                    "metadata": {},
                    "number": f"HV-{self.history:06d}",
                    "paid": paid,
                    "period_end": int(ts.timestamp()),
                    "period_start": int(ts.timestamp()),
                    "status": "paid" if paid else "open",
                    "subtotal": amount,
                    "total": amount,
                }
            )
            self.history += 1
            if not drawn:
                continue
            pi_ts = inv_ts + timedelta(hours=r.randint(1, 60))
            payments.append(
                {
                    "id": pi,
                    "object": "payment_intent",
                    "amount": amount,
                    "amount_capturable": 0,
                    "amount_received": amount,
                    "capture_method": "automatic",
                    "created": int(pi_ts.timestamp()),
                    "currency": "usd",
                    "customer": cus,
                    "description": f"Invoice {inv}",
                    "invoice": inv,
                    "latest_charge": ch,
                    "livemode": False,
                    "metadata": {},
                    "payment_method": "pm_" + self.alnum(24),
                    "payment_method_types": ["card"],
                    "status": "succeeded",
                }
            )
            if r.random() < 0.06:
                re_ts = pi_ts + timedelta(days=r.randint(1, 10))
                refunds.append(
                    {
                        "id": "re_" + self.alnum(24),
                        "object": "refund",
                        "amount": amount if r.random() < 0.5 else amount // 2,
                        "charge": ch,
                        "created": int(re_ts.timestamp()),
                        "currency": "usd",
                        "metadata": {},
                        "payment_intent": pi,
                        "reason": "requested_by_customer",
                        "status": "succeeded",
                    }
                )
