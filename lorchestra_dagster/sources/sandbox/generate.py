"""A deterministic synthetic psychology practice, in each vendor's native shapes.

``generate(clients=30, seed=7)`` returns a :class:`Practice` whose ``streams``
map each stream id of :mod:`.streams` to the list of objects that vendor API
would return. The same seed always yields byte-identical data
(:meth:`Practice.sha256`), so tests can compare what was ingested with what
was generated. All people are invented (see :mod:`.names`).

Run ``python -m lorchestra_dagster.sources.sandbox.generate --clients 30`` to
print per-stream counts and the practice hash.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lorchestra_dagster.sources.sandbox import names as N
from lorchestra_dagster.sources.sandbox import shapes as S
from lorchestra_dagster.sources.sandbox.billing import BillingStory
from lorchestra_dagster.sources.sandbox.catalog_forms import load_form_specs
from lorchestra_dagster.sources.sandbox.forms import FormSpec, form_definition
from lorchestra_dagster.sources.sandbox.streams import STREAMS

START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_ALNUM_TABLE = bytes(ord(_ALNUM[i % len(_ALNUM)]) for i in range(256))


@dataclass
class Practice:
    """Every object of the synthetic practice, grouped by stream id."""

    seed: int
    clients: int
    now: datetime
    forms: dict[str, FormSpec]
    streams: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {sid: [] for sid in STREAMS}
    )
    generation: int = 0

    def counts(self) -> dict[str, int]:
        return {sid: len(objs) for sid, objs in self.streams.items()}

    def form_definitions(self) -> dict[str, dict[str, Any]]:
        return {fid: form_definition(spec) for fid, spec in self.forms.items()}

    def sha256(self) -> str:
        """Hash of all objects and form definitions (canonical JSON)."""
        h = hashlib.sha256()
        for sid in sorted(self.streams):
            for obj in self.streams[sid]:
                h.update(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode())
        h.update(json.dumps(self.form_definitions(), sort_keys=True).encode())
        return h.hexdigest()

    def add_clients(self, n: int, *, days: int = 7) -> dict[str, int]:
        """Append ``n`` new clients whose whole story happens after ``now``; return new counts.

        Used to test that a rerun ingests exactly the new objects: every new
        object's source timestamp is later than any existing one.
        """
        before = self.counts()
        self.generation += 1
        rng = random.Random(f"{self.seed}:extend:{self.generation}")
        start, end = self.now + timedelta(minutes=30), self.now + timedelta(days=days)
        gen = _Gen(self, rng)
        for i in range(n):
            gen.client(self.clients + i, start, end)
        self.clients += n
        self.now = end + timedelta(hours=1)
        after = self.counts()
        return {sid: after[sid] - before[sid] for sid in after}


class _Gen(BillingStory):
    """Builds one client's story across every stream."""

    def __init__(self, practice: Practice, rng: random.Random) -> None:
        self.p = practice
        self.r = rng
        self.history = 1000 + sum(practice.counts().values())

    # ids -------------------------------------------------------------------
    def uuid(self) -> str:
        return str(uuid.UUID(int=self.r.getrandbits(128), version=4))

    def hex(self, n: int) -> str:
        return f"{self.r.getrandbits(4 * n):0{n}x}"

    def alnum(self, n: int) -> str:
        """``n`` random alphanumeric characters (Stripe/Graph style ids)."""
        return self.r.getrandbits(8 * n).to_bytes(n, "big").translate(_ALNUM_TABLE).decode()

    def noise(self, scale: float) -> float:
        """Cheap zero-mean noise (difference of two uniforms) with std ~ ``scale``."""
        return (self.r.random() - self.r.random()) * scale * 2.449

    def when(self, start: datetime, end: datetime) -> datetime:
        span = max(int((end - start).total_seconds()), 1)
        return (start + timedelta(seconds=self.r.randrange(span))).replace(microsecond=0)

    # story -------------------------------------------------------------------
    def client(self, index: int, start: datetime, end: datetime) -> None:
        r = self.r
        first, last = r.choice(N.GIVEN_NAMES), r.choice(N.FAMILY_NAMES)
        email = f"{first.lower()}.{last.lower()}{index}@{r.choice(N.CLIENT_DOMAINS)}"
        intake = self.when(start, start + (end - start) * 0.8)
        baseline = r.uniform(0.4, 2.6)
        slope = r.choice((-0.06, -0.04, -0.02, 0.0, 0.02))
        risk = index % 8 == 3 or r.random() < 0.05
        n_sessions = r.randint(1, 9)
        gap = timedelta(days=r.choice((7, 7, 14)))
        sessions = [intake + gap * k + timedelta(hours=r.randint(0, 6)) for k in range(n_sessions)]
        planned, sessions = sessions, [s for s in sessions if s < end]
        last_seen = sessions[-1] if sessions else intake
        discharged = (end - last_seen).days > 45
        contact_id = self.uuid()
        c = {
            "first": first,
            "last": last,
            "name": f"{first} {last}",
            "email": email,
            "id": contact_id,
            "index": index,
        }

        self.contact(c, intake, last_seen, discharged, r.choice(list(N.CLIENT_TYPES)))
        for k, ts in enumerate(sessions, start=1):
            self.session(c, k, ts, end)
        if not discharged and sessions:  # in treatment: the next appointment is booked
            upcoming = planned[len(sessions)] if len(planned) > len(sessions) else last_seen + gap
            while upcoming < end:
                upcoming += gap
            self.scheduled_session(c, len(sessions) + 1, upcoming, last_seen, end)
        if len(sessions) >= 4:
            self.report(c, 100000000, sessions[len(sessions) // 2] + timedelta(days=2), end)
        if discharged and sessions:
            self.report(c, 100000001, last_seen + timedelta(days=3), end)

        def level(ts: datetime) -> float:
            weeks = (ts - intake).days / 7
            return max(0.0, min(3.0, baseline + slope * weeks + r.gauss(0, 0.25)))

        self.response(c, "intake_01", intake - timedelta(days=2), level, risk)
        if r.random() < 0.7:
            self.response(c, "intake_02", intake + timedelta(hours=2), level, risk)
        for k in range(1, 1 + n_sessions // 3):
            ts = intake + timedelta(days=28 * k, hours=r.randint(1, 20))
            if ts < end:
                self.response(c, "followup", ts, level, risk and k == 1)

        self.client_emails(c, sessions or [intake], end)
        self.billing(c, intake, sessions, end)

    def vendor_emails(self, count: int, start: datetime, end: datetime) -> None:
        for _ in range(count):
            name, addr = self.r.choice(N.VENDOR_SENDERS)
            subject = self.r.choice(N.VENDOR_SUBJECTS)
            body = f"{subject}. This is an automated message from {name}."
            self.email(
                self.r.choice(("gmail_acct1", "gmail_acct2", "exchange_office")),
                name,
                addr,
                subject,
                body,
                self.when(start, end),
            )

    # dataverse -----------------------------------------------------------------
    def contact(
        self, c: dict[str, Any], intake: datetime, last: datetime, discharged: bool, ctype: int
    ) -> None:
        r = self.r
        stage = 100000004 if discharged else r.choice((100000001, 100000002, 100000002, 100000003))
        created = intake - timedelta(days=r.randint(3, 10))
        row: dict[str, Any] = {
            "@odata.etag": f'W/"{self.history}"',
            "contactid": c["id"],
            "firstname": c["first"],
            "lastname": c["last"],
            "fullname": c["name"],
            "emailaddress1": c["email"],
            "mobilephone": f"+1 555 01{r.randint(0, 99):02d}",
            "birthdate": f"{r.randint(1950, 2006)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}",
            "cr_clientnumber": f"C-{c['index'] + 1:06d}",
        }
        S.option(row, "cr_clienttype", ctype, N.CLIENT_TYPES)
        S.option(row, "cr_lifecyclestage", stage, N.LIFECYCLE)
        S.option(row, "statecode", 1 if discharged else 0, {0: "Active", 1: "Inactive"})
        S.option(row, "statuscode", 2 if discharged else 1, {1: "Active", 2: "Inactive"})
        S.dv_timestamps(row, created, max(last, created) + timedelta(hours=r.randint(1, 48)))
        row["versionnumber"] = self.history
        self.history += 1
        self.p.streams["dataverse_contacts"].append(row)

    def session(self, c: dict[str, Any], k: int, ts: datetime, end: datetime) -> None:
        r = self.r
        theme, technique = r.choice(N.THEMES), r.choice(N.TECHNIQUES)
        progress = r.choice(N.PROGRESS)
        lines = [
            f"<p><b>Clinician:</b> How has the {theme} been since we last met?</p>",
            f"<p><b>Client:</b> There has been {progress}, though some days are hard.</p>",
            f"<p><b>Clinician:</b> Let us look at how {technique} fits into your week.</p>",
            "<p><b>Client:</b> I can try that before next time.</p>",
        ]
        note = (
            f"<h3>Session {k}</h3><p>Focus: {theme}. Intervention: {technique}.</p>"
            f"<ul><li>Progress: {progress}</li><li>Risk reviewed: no change</li></ul>"
        )
        summary = f"<p>Session {k} addressed {theme}; homework: {technique}.</p>"
        modified = min(ts + timedelta(hours=r.randint(2, 72)), end)
        row: dict[str, Any] = {
            "@odata.etag": f'W/"{self.history}"',
            "cr_clientsessionid": self.uuid(),
            "cr_name": f"Session {k}",
            "cr_sessionnumber": k,
            "cr_sessiondate": S.iso(ts),
            "cr_durationminutes": r.choice((50, 50, 60, 90)),
            "cr_clinician": r.choice(N.CLINICIANS),
            "cr_transcript": "".join(lines),
            "cr_notes": note,
            "cr_summary": summary,
        }
        S.option(row, "cr_sessiontype", 100000000 if k == 1 else 100000001, N.SESSION_TYPES)
        S.dv_lookup(row, "cr_client", c["id"], "contact", c["name"])
        # Attendance from its own generator (seeded by the session id), so the rest of the
        # practice stays what it was; a session nobody attended has no texts.
        draw = random.Random(row["cr_clientsessionid"]).random()
        status = 2 if draw < 0.84 or k == 1 else 100000000 if draw < 0.93 else 100000001
        if status != 2:
            for text in ("cr_transcript", "cr_notes", "cr_summary"):
                row[text] = None
        S.option(row, "statecode", 1, {0: "Active", 1: "Inactive"})
        S.option(row, "statuscode", status, N.SESSION_STATUS)
        S.dv_timestamps(row, ts + timedelta(hours=1), max(modified, ts + timedelta(hours=1)))
        row["versionnumber"] = self.history
        self.history += 1
        self.p.streams["dataverse_sessions"].append(row)

    def scheduled_session(
        self, c: dict[str, Any], k: int, ts: datetime, booked: datetime, end: datetime
    ) -> None:
        """The client's next appointment (after ``end``), booked at their last session.

        Drawn from a generator of its own (seeded by the client id and ``k``) so adding it
        changed none of the practice's other objects.
        """
        r = random.Random(f"{c['id']}:{k}")
        booked = min(booked + timedelta(hours=1), end - timedelta(minutes=1))
        row: dict[str, Any] = {
            "@odata.etag": f'W/"{self.history}"',
            "cr_clientsessionid": str(uuid.UUID(int=r.getrandbits(128), version=4)),
            "cr_name": f"Session {k}",
            "cr_sessionnumber": k,
            "cr_sessiondate": S.iso(ts),
            "cr_durationminutes": 50,
            "cr_clinician": r.choice(N.CLINICIANS),
            "cr_transcript": None,
            "cr_notes": None,
            "cr_summary": None,
        }
        S.option(row, "cr_sessiontype", 100000001, N.SESSION_TYPES)
        S.dv_lookup(row, "cr_client", c["id"], "contact", c["name"])
        S.option(row, "statecode", 0, {0: "Active", 1: "Inactive"})
        S.option(row, "statuscode", 1, N.SESSION_STATUS)
        S.dv_timestamps(row, booked, booked)
        row["versionnumber"] = self.history
        self.history += 1
        self.p.streams["dataverse_sessions"].append(row)

    def report(self, c: dict[str, Any], rtype: int, ts: datetime, end: datetime) -> None:
        ts = min(ts, end)
        title = f"{N.REPORT_TYPES[rtype]} for client {c['index'] + 1}"
        content = (
            f"<h2>{N.REPORT_TYPES[rtype]}</h2><p>Presenting concerns: "
            f"{self.r.choice(N.THEMES)} and {self.r.choice(N.THEMES)}.</p>"
            f"<p>Course of treatment: {self.r.choice(N.TECHNIQUES)}; "
            f"{self.r.choice(N.PROGRESS)}.</p><p>Plan: continue and review.</p>"
        )
        row: dict[str, Any] = {
            "@odata.etag": f'W/"{self.history}"',
            "cr_clientreportid": self.uuid(),
            "cr_title": title,
            "cr_reportdate": ts.date().isoformat(),
            "cr_content": content,
        }
        S.option(row, "cr_reporttype", rtype, N.REPORT_TYPES)
        S.dv_lookup(row, "cr_client", c["id"], "contact", c["name"])
        S.dv_timestamps(row, ts, ts + timedelta(minutes=self.r.randint(5, 600)))
        row["versionnumber"] = self.history
        self.history += 1
        self.p.streams["dataverse_reports"].append(row)

    # forms -----------------------------------------------------------------------
    def response(
        self, c: dict[str, Any], form_id: str, ts: datetime, level: Any, risk: bool
    ) -> None:
        spec = self.p.forms[form_id]
        lvl = level(ts)
        answers: dict[str, Any] = {}
        for q in spec.questions:
            top = len(q.options) - 1
            frac = lvl / 3
            score = round((1 - frac if q.reversed else frac) * top + self.noise(0.6))
            if q.risk_item:
                score = max(1, min(score, 2)) if risk else (1 if lvl > 2.7 else 0)
            value = q.options[max(0, min(top, score))]
            answers[q.question_id] = {
                "questionId": q.question_id,
                "textAnswers": {"answers": [{"value": value}]},
            }
        created = ts.replace(microsecond=self.r.randrange(1000) * 1000)
        submitted = created + timedelta(seconds=self.r.randint(60, 900))
        self.p.streams[f"forms_{form_id}"].append(
            {
                "formId": form_id,
                "responseId": "ACYDBN" + self.alnum(34),
                "createTime": S.rfc3339_nano(created),
                "lastSubmittedTime": S.rfc3339_nano(submitted),
                "respondentEmail": c["email"],
                "answers": answers,
            }
        )

    # mail --------------------------------------------------------------------------
    def client_emails(self, c: dict[str, Any], anchors: list[datetime], end: datetime) -> None:
        for _ in range(self.r.randint(0, 3)):
            ts = min(self.r.choice(anchors) - timedelta(hours=self.r.randint(1, 40)), end)
            subject = self.r.choice(N.CLIENT_SUBJECTS)
            body = (
                f"Hello, {subject.lower()}. I wanted to let you know before our next "
                f"appointment. Best wishes, {c['first']}"
            )
            stream = self.r.choice(("gmail_acct1", "gmail_acct2", "exchange_office"))
            self.email(stream, c["name"], c["email"], subject, body, ts)

    def email(
        self, stream: str, name: str, addr: str, subject: str, body: str, ts: datetime
    ) -> None:
        html = f'<div dir="ltr"><p>{body}</p></div>'
        self.history += 1
        if stream == "exchange_office":
            msg = S.graph_message(
                msg_id="AAMkAG" + self.alnum(46) + "=",
                conversation_id="AAQkAG" + self.alnum(30),
                ts=ts,
                sender_name=name,
                sender=addr,
                to_name="Practice office",
                to=N.EXCHANGE_MAILBOX,
                subject=subject,
                html=html,
                preview=body,
                is_read=self.r.random() < 0.6,
                change_key="CQAAAB" + self.alnum(20),
            )
        else:
            mid = self.hex(16)
            to = N.GMAIL_ACCOUNTS[stream.removeprefix("gmail_")]
            msg = S.gmail_message(
                msg_id=mid,
                thread_id=mid,
                history_id=self.history,
                ts=ts,
                sender=f"{name} <{addr}>",
                to=to,
                subject=subject,
                text=body,
                html=html,
                unread=self.r.random() < 0.4,
            )
        self.p.streams[stream].append(msg)


def generate(clients: int = 30, seed: int = 7, *, catalog_dir: Path | None = None) -> Practice:
    """Build the practice: ``clients`` clients plus vendor mail, deterministic in ``seed``."""
    practice = Practice(seed=seed, clients=clients, now=NOW, forms=load_form_specs(catalog_dir))
    rng = random.Random(f"{seed}:practice")
    gen = _Gen(practice, rng)
    for i in range(clients):
        gen.client(i, START, NOW)
    gen.vendor_emails(max(3, clients // 2), START, NOW)
    return practice


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=30)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--catalog", type=Path, default=None, help="catalog with bindings/")
    ap.add_argument("--out", type=Path, default=None, help="write <stream>.jsonl files here")
    args = ap.parse_args(argv)
    practice = generate(args.clients, args.seed, catalog_dir=args.catalog)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        for sid, objs in practice.streams.items():
            with (args.out / f"{sid}.jsonl").open("w", encoding="utf-8") as fh:
                for obj in objs:
                    fh.write(json.dumps(obj, sort_keys=True) + "\n")
    print(
        json.dumps(
            {
                "clients": practice.clients,
                "seed": practice.seed,
                "sha256": practice.sha256(),
                "counts": practice.counts(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
