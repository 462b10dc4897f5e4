"""Made-up vocabulary for the synthetic practice.

Everything here is invented: given names and family names are common words
combined at random, domains are reserved example domains (RFC 2606), so no
generated record can describe a real person.
"""

from __future__ import annotations

GIVEN_NAMES = (
    "Ada Alba Ari Bea Bram Cato Cleo Dara Eli Emre Fay Finn Gil Greta Hale Ines Ivo Jada Juno "
    "Kai Kira Lale Lio Mara Milo Nell Noor Oda Olin Pia Quin Rhea Rune Sami Sela Tam Teo Uma "
    "Vera Wren Yara Zev Ansel Brin Corin Dessa Edda Floy Gavi Hollis Ilse Jory Keld Lumi"
).split()

FAMILY_NAMES = (
    "Ashgrove Birchell Cobwell Dunmere Eastlake Fernhill Galloway Hartwell Ivesby Juniper "
    "Kestrel Larkspur Marlowe Northcote Oakhurst Pellam Quarry Rowntree Silvan Thistle Umber "
    "Vantree Westbrook Yarrow Zelling Alder Brackley Calder Denholm Elsworth Fallow Glenmore "
    "Hazelby Inchley Kettering Lindow Mossley Netherby Orwell Pendle Redfern Stanwick Tilbury"
).split()

CLIENT_DOMAINS = ("example.com", "example.net", "example.org", "mail.example.com")

PRACTICE_NAME = "Harbourview Psychology (fictional)"
GMAIL_ACCOUNTS = {
    "acct1": "intake@harbourview.example.com",
    "acct2": "dr.lindqvist@harbourview.example.com",
}
EXCHANGE_MAILBOX = "office@harbourview.example.org"
CLINICIANS = ("Dr. Ilse Lindqvist", "Dr. Tomas Ferreira", "Jo Achterberg, MSc")

CLIENT_TYPES = {
    100000000: "Individual",
    100000001: "Couple",
    100000002: "Family",
    100000003: "Assessment only",
}
LIFECYCLE = {
    100000000: "Inquiry",
    100000001: "Intake",
    100000002: "Active",
    100000003: "On hold",
    100000004: "Discharged",
}
#: cr_clientsession statuscode (Status Reason) -> label; 1 belongs to statecode 0 (Active),
#: the others to 1 (Inactive), as Dataverse pairs status reasons with states.
SESSION_STATUS = {1: "Scheduled", 2: "Attended", 100000000: "Cancelled", 100000001: "No-show"}

SESSION_TYPES = {
    100000000: "Intake interview",
    100000001: "Therapy session",
    100000002: "Review",
    100000003: "Assessment",
}
REPORT_TYPES = {
    100000000: "Progress report",
    100000001: "Discharge summary",
    100000002: "Assessment report",
}

THEMES = (
    "sleep routine",
    "work stress",
    "family conflict",
    "grief",
    "social anxiety",
    "panic symptoms",
    "low mood",
    "perfectionism",
    "relationship worries",
    "motivation",
    "rumination",
    "avoidance",
    "self-criticism",
    "transition to a new job",
    "exam pressure",
)
TECHNIQUES = (
    "behavioural activation",
    "thought records",
    "graded exposure",
    "breathing practice",
    "values clarification",
    "sleep hygiene plan",
    "problem-solving steps",
    "mindfulness exercise",
    "activity scheduling",
    "cognitive restructuring",
)
PROGRESS = (
    "some improvement",
    "little change",
    "clear improvement",
    "a setback",
    "steady progress",
    "mixed results",
)

VENDOR_SENDERS = (
    ("Office Supplies Co", "orders@supplies.example.net"),
    ("Continuing Education Board", "news@ceboard.example.org"),
    ("Practice Software", "noreply@software.example.com"),
    ("Building Management", "facilities@building.example.net"),
)
VENDOR_SUBJECTS = (
    "Your order has shipped",
    "Upcoming workshop on trauma-informed care",
    "Scheduled maintenance notice",
    "Monthly newsletter",
    "Invoice available",
    "Fire alarm test on Thursday",
)
CLIENT_SUBJECTS = (
    "Rescheduling next week",
    "Question about the questionnaire",
    "Invoice question",
    "Running late today",
    "Thank you",
    "Can we move to video?",
    "Form submitted",
)
