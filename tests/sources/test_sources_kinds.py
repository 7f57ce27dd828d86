"""Each source kind, with table shapes and vocabularies as the products document them, on DuckDB and
PostgreSQL: what it writes to the consent log, and what enforcement then lets through."""

from __future__ import annotations

import json
from datetime import datetime

from tcbits import b64, bits, disclosed, gpp_header, two_bits, vendor_bitfield
from tcbits import tc as raw_tc

T0 = datetime(2026, 3, 1, 9, 0)


def at(hour: int, minute: int = 0) -> datetime:
    return T0.replace(hour=hour, minute=minute)


def statuses(db, subject: str, purpose: str = "ad_targeting") -> list[str]:
    return [r[2] for r in db.log() if r[0] == subject and r[1] == purpose]


# -- gpc ------------------------------------------------------------------------------------------

GPC = {
    "name": "web_gpc", "kind": "gpc", "table": "raw.web_requests",
    "columns": {"subject": "customer_id", "signal": "sec_gpc", "event_ts": "requested_at", "recorded_at": "loaded_at"},
    "purposes": ["ad_targeting"],
}  # fmt: skip
BANNER = {"name": "banner", "kind": "events", "table": "raw.banner_events"}
EVENTS_COLUMNS = (
    "subject_id varchar, purpose varchar, status varchar, event_ts timestamp, recorded_at timestamp"
)


def test_gpc_header_1_withdraws_and_anything_else_says_nothing(db) -> None:
    db.table(
        "raw.banner_events", EVENTS_COLUMNS, [(s, "ad_targeting", "granted", at(8), at(8)) for s in "abcd"]
    )
    db.table(
        "raw.web_requests",
        "customer_id varchar, sec_gpc varchar, requested_at timestamp, loaded_at timestamp",
        [
            ("a", "1", at(10), at(11)),
            ("b", "0", at(10), at(11)),
            ("c", None, at(10), at(11)),
            ("d", " 1 ", at(10), at(11)),
        ],
    )
    records = db.ingest(BANNER, GPC)
    assert statuses(db, "a") == ["granted", "withdrawn"]
    assert statuses(db, "b") == ["granted"] and statuses(db, "c") == ["granted"]
    assert records[1].rejected == {"no_opt_out": 2}
    assert db.kept(["a", "b", "c", "d"]) == {"b", "c"}


def test_a_gpc_signal_repeated_on_every_request_writes_one_event(db) -> None:
    db.table("raw.banner_events", EVENTS_COLUMNS, [("a", "ad_targeting", "granted", at(8), at(8))])
    requests = [("a", "1", at(10, m), at(10, m)) for m in range(30)]
    db.table(
        "raw.web_requests",
        "customer_id varchar, sec_gpc varchar, requested_at timestamp, loaded_at timestamp",
        requests,
    )
    (_, gpc) = db.ingest(BANNER, GPC)
    assert gpc.observations_read == 30 and gpc.events_written == 1
    db.insert("raw.web_requests", [("a", "1", at(12, m), at(12, m)) for m in range(10)])
    (again,) = db.ingest(GPC)
    assert again.events_written == 0
    assert statuses(db, "a") == ["granted", "withdrawn"]


def test_gpc_for_a_subject_already_withdrawn_writes_nothing(db) -> None:
    db.table("raw.banner_events", EVENTS_COLUMNS, [("a", "ad_targeting", "withdrawn", at(8), at(8))])
    db.table(
        "raw.web_requests", "customer_id varchar, sec_gpc varchar, requested_at timestamp, loaded_at timestamp",
        [("a", "1", at(10), at(10))],
    )  # fmt: skip
    (_, gpc) = db.ingest(BANNER, GPC)
    assert gpc.events_written == 0 and statuses(db, "a") == ["withdrawn"]


def test_a_skipped_gpc_signal_is_written_when_a_late_grant_makes_it_matter(db) -> None:
    """withdrawn at 8, GPC at 10 (skipped: already withdrawn), then a grant at 9 arrives late: the GPC
    at 10 decides, as if everything had been ingested at once."""
    db.table("raw.banner_events", EVENTS_COLUMNS, [("a", "ad_targeting", "withdrawn", at(8), at(8))])
    db.table(
        "raw.web_requests", "customer_id varchar, sec_gpc varchar, requested_at timestamp, loaded_at timestamp",
        [("a", "1", at(10), at(10))],
    )  # fmt: skip
    db.ingest(BANNER, GPC)
    db.insert("raw.banner_events", [("a", "ad_targeting", "granted", at(9), at(12))])
    db.ingest(BANNER)
    assert statuses(db, "a") == ["withdrawn", "granted", "withdrawn"]
    assert db.kept(["a"]) == set()


# -- usprivacy ------------------------------------------------------------------------------------

USP = {
    "name": "ccpa", "kind": "usprivacy", "table": "raw.usp",
    "columns": {"subject": "customer_id", "signal": "us_privacy", "event_ts": "seen_at"}, "purposes": ["ad_targeting"],
}  # fmt: skip


def test_us_privacy_opt_out_of_sale_withdraws_and_a_bad_string_is_invalid(db) -> None:
    db.table(
        "raw.banner_events", EVENTS_COLUMNS, [(s, "ad_targeting", "granted", at(8), at(8)) for s in "abcd"]
    )
    db.table(
        "raw.usp", "customer_id varchar, us_privacy varchar, seen_at timestamp",
        [("a", "1YYN", at(10)), ("b", "1YNN", at(10)), ("c", "1---", at(10)), ("d", "2XYZ", at(10))],
    )  # fmt: skip
    (_, usp) = db.ingest(BANNER, USP)
    assert statuses(db, "a") == ["granted", "withdrawn"]
    assert statuses(db, "d") == ["granted", "invalid"]
    assert usp.rejected == {"no_opt_out": 2}
    assert db.kept(list("abcd")) == {"b", "c"}


# -- fides ----------------------------------------------------------------------------------------

FIDES = {
    "name": "fides_prefs", "kind": "fides", "table": "fides.privacypreferencehistory",
    "columns": {"subject": "email"},
    "purposes": {"marketing_advertising": "ad_targeting", "email_newsletter": "email_marketing"},
}  # fmt: skip
FIDES_COLUMNS = (
    "id varchar, created_at timestamp, email varchar, fides_user_device varchar, preference varchar, "
    "notice_key varchar, method varchar"
)


def test_fides_opt_in_grants_opt_out_withdraws_and_gpc_is_kept_as_the_source(db) -> None:
    db.table(
        "fides.privacypreferencehistory", FIDES_COLUMNS,
        [
            ("pri_1", at(8), "ann@example.com", "dev1", "opt_in", "marketing_advertising", "button"),
            ("pri_2", at(9), "ann@example.com", "dev1", "opt_out", "marketing_advertising", "gpc"),
            ("pri_3", at(8), "bob@example.com", "dev2", "opt_in", "marketing_advertising", "accept"),
            ("pri_4", at(8), "cy@example.com", "dev3", "opt_out", "marketing_advertising", "reject"),
            ("pri_5", at(8), "di@example.com", "dev4", "acknowledge", "marketing_advertising", "acknowledge"),
            ("pri_6", at(8), "bob@example.com", "dev2", "opt_in", "essential", "button"),
            ("pri_7", at(8), "bob@example.com", "dev2", "opt_in", "email_newsletter", "button"),
            ("pri_8", at(8), None, "dev5", "opt_in", "marketing_advertising", "button"),
        ],
    )  # fmt: skip
    (rec,) = db.ingest(FIDES)
    log = db.log()
    assert [(r[2], r[4]) for r in log if r[0] == "ann@example.com"] == [
        ("granted", "fides_prefs:button"), ("withdrawn", "fides_prefs:gpc"),
    ]  # fmt: skip
    assert statuses(db, "cy@example.com") == ["denied"]
    assert statuses(db, "bob@example.com", "email_marketing") == ["granted"]
    assert rec.rejected == {"acknowledge_not_consent": 1, "unmapped_notice": 1, "missing_subject": 1}
    people = ["ann@example.com", "bob@example.com", "cy@example.com", "di@example.com"]
    assert db.kept(people) == {"bob@example.com"}


# -- segment --------------------------------------------------------------------------------------

SEGMENT = {
    "name": "segment_tracks", "kind": "segment", "table": "segment.tracks",
    "columns": {"subject": "user_id", "signal": "context", "event_ts": "timestamp", "recorded_at": "received_at",
                "id": "message_id"},
    "purposes": {"Advertising": "ad_targeting", "Marketing": "email_marketing"},
}  # fmt: skip


def consent(**prefs: bool) -> str:
    return json.dumps({"page": {"path": "/"}, "consent": {"categoryPreferences": prefs}})


def test_segment_category_preferences_and_an_event_without_consent_is_no_consent(db) -> None:
    rows = [
        ("m1", "u1", consent(Advertising=True, Marketing=False), at(8), at(8)),
        ("m2", "u1", consent(Advertising=True, Marketing=False), at(9), at(9)),
        ("m3", "u2", json.dumps({"page": {"path": "/"}}), at(8), at(8)),
        ("m4", "u3", consent(Advertising=False), at(8), at(8)),
        ("m5", "u4", "{not json", at(8), at(8)),
    ]
    cols = "message_id varchar, user_id varchar, context varchar, timestamp timestamp, received_at timestamp"
    db.table("segment.tracks", cols, rows)
    (rec,) = db.ingest(SEGMENT)
    assert statuses(db, "u1") == ["granted"] and statuses(db, "u1", "email_marketing") == ["denied"]
    assert statuses(db, "u2") == [] and statuses(db, "u3") == ["denied"] and statuses(db, "u4") == ["invalid"]
    assert rec.rejected == {"no_consent_object": 1}
    assert db.kept(["u1", "u2", "u3", "u4"]) == {"u1"}


# -- onetrust -------------------------------------------------------------------------------------

ONETRUST = {
    "name": "onetrust_cookie", "kind": "onetrust", "table": "raw.optanon",
    "columns": {"subject": "customer_id", "signal": "optanon_consent", "event_ts": "seen_at"},
    "purposes": {"C0004": "ad_targeting"},
}  # fmt: skip


def cookie(groups: str) -> str:
    from urllib.parse import quote

    return f"isGpcEnabled=0&datestamp=Mon+Mar+01+2026&version=202401.1.0&isIABGlobal=false&groups={quote(groups, safe='')}"


def test_onetrust_optanon_groups_grant_and_refuse_per_group(db) -> None:
    rows = [
        ("a", cookie("C0001:1,C0002:0,C0004:1"), at(8)),
        ("a", cookie("C0001:1,C0002:0,C0004:0"), at(9)),
        ("b", "C0001:1,C0004:1", at(8)),
        ("c", cookie("C0001:1,C0002:1"), at(8)),
        ("d", cookie("C0001:1,C0004:yes"), at(8)),
    ]
    db.table("raw.optanon", "customer_id varchar, optanon_consent varchar, seen_at timestamp", rows)
    (rec,) = db.ingest(ONETRUST)
    # a signal source writes only the latest cookie of a batch; its refusal is a withdrawal, as the
    # subject's earlier cookie granted
    assert statuses(db, "a") == ["withdrawn"]
    assert statuses(db, "b") == ["granted"] and statuses(db, "d") == ["invalid"]
    assert rec.rejected == {"no_mapped_group": 1}
    assert db.kept(list("abcd")) == {"b"}


def test_onetrust_receipt_purpose_statuses(db) -> None:
    source = {
        "name": "onetrust_receipts", "kind": "onetrust", "format": "receipts", "table": "raw.receipts",
        "columns": {"subject": "data_subject_id", "purpose": "purpose_id", "status": "purpose_status",
                    "event_ts": "interaction_date"},
        "purposes": {"7f3c1a2e-purpose-ads": "ad_targeting"},
    }  # fmt: skip
    p = "7f3c1a2e-purpose-ads"
    rows = [
        ("a", p, "ACTIVE", at(8)), ("b", p, "CONFIRMED", at(8)), ("c", p, "ACTIVE", at(8)), ("c", p, "WITHDRAWN", at(9)),
        ("d", p, "EXPIRED", at(8)), ("e", p, "PENDING", at(8)), ("f", p, "NOTGIVEN", at(8)), ("g", p, "SOMETHING", at(8)),
    ]  # fmt: skip
    db.table(
        "raw.receipts",
        "data_subject_id varchar, purpose_id varchar, purpose_status varchar, interaction_date timestamp",
        rows,
    )
    (rec,) = db.ingest(source)
    assert statuses(db, "c") == ["granted", "withdrawn"] and statuses(db, "f") == ["denied"]
    assert statuses(db, "g") == ["invalid"] and statuses(db, "e") == []
    assert rec.rejected == {"pending_confirmation": 1}
    assert db.kept(list("abcdefg")) == {"a", "b"}


# -- consent mode ---------------------------------------------------------------------------------

CONSENT_MODE = {
    "name": "gtag_consent", "kind": "consent_mode", "table": "raw.consent_states",
    "columns": {"subject": "client_id", "event_ts": "event_time"},
    "purposes": {"ad_user_data": "ad_targeting", "ad_personalization": "ad_targeting"},
}  # fmt: skip


def test_consent_mode_v2_grants_only_when_every_mapped_type_is_granted(db) -> None:
    rows = [
        ("a", "granted", "granted", at(8)), ("b", "granted", "denied", at(8)), ("c", "granted", None, at(8)),
        ("d", "granted", "maybe", at(8)), ("e", None, None, at(8)),
    ]  # fmt: skip
    db.table(
        "raw.consent_states",
        "client_id varchar, ad_user_data varchar, ad_personalization varchar, event_time timestamp",
        rows,
    )
    (rec,) = db.ingest(CONSENT_MODE)
    assert statuses(db, "a") == ["granted"] and statuses(db, "b") == ["denied"]
    assert statuses(db, "c") == [] and statuses(db, "d") == ["invalid"]
    assert rec.rejected == {"no_consent_state": 2}
    assert db.kept(list("abcde")) == {"a"}


# -- events ---------------------------------------------------------------------------------------


def test_events_are_copied_with_statuses_as_the_rule_reads_them(db) -> None:
    rows = [
        ("a", " AD_targeting ", " GRANTED ", at(8), at(8)), ("b", "ad_targeting", "maybe", at(8), at(8)),
        ("c", "unknown_purpose", "granted", at(8), at(8)), ("  ", "ad_targeting", "granted", at(8), at(8)),
    ]  # fmt: skip
    db.table("raw.banner_events", EVENTS_COLUMNS, rows)
    (rec,) = db.ingest(BANNER)
    assert statuses(db, "a") == ["granted"] and statuses(db, "b") == ["invalid"]
    assert rec.rejected == {"unknown_purpose": 1, "missing_subject": 1}
    assert db.kept(["a", "b", "c"]) == {"a"}


def test_event_purposes_and_statuses_fold_only_a_to_z_as_the_rule_does(db) -> None:
    """'AD_TARGETING' with a Kelvin sign or a dotted capital I is not ad_targeting to the rule (A-Z only),
    so ingestion must not map it there (Python's str.lower() would)."""
    kelvin = "\u212a"  # KELVIN SIGN; str.lower() gives ASCII 'k'
    rows = [
        ("a", "AD_TARGETING", "GRANTED", at(8), at(8)),
        ("b", f"ad_targeting_{kelvin}", "granted", at(8), at(8)),
        ("c", "ad_targeting", f"{kelvin}granted", at(8), at(8)),
    ]  # fmt: skip
    source = {**BANNER, "purposes": {"ad_targeting": "ad_targeting", "ad_targeting_k": "ad_targeting"}}
    db.table("raw.banner_events", EVENTS_COLUMNS, rows)
    (rec,) = db.ingest(source)
    assert rec.rejected == {"unknown_purpose": 1}
    assert statuses(db, "c") == ["invalid"]
    assert db.kept(["a", "b", "c"]) == {"a"}


# -- tcf and gpp ----------------------------------------------------------------------------------

TCF = {
    "name": "euconsent", "kind": "tcf", "table": "raw.tc_strings",
    "columns": {"subject": "customer_id", "signal": "euconsent_v2", "event_ts": "seen_at"},
    "purposes": {"ad_targeting": {"tcf_purposes": [1, 3, 4], "vendors": [755]}},
}  # fmt: skip
VENDOR = vendor_bitfield([755])


def tc(**fields: object) -> str:
    """A TCF 2.3 TC string (policy version 5, with the mandatory disclosed-vendors segment)."""
    return raw_tc(None, disclosed([1, 755]), **fields)


def restriction(purpose: int, kind: int, vendor: int) -> str:
    return bits(1, 12) + bits(purpose, 6) + bits(kind, 2) + bits(1, 12) + "0" + bits(vendor, 16)


def test_tcf_grants_only_with_every_purpose_vendor_and_no_restriction(db) -> None:
    good = tc(purposes=[1, 3, 4], vendor_consents=VENDOR)
    rows = [
        ("a", good, at(8)),
        ("b", tc(purposes=[1, 3], vendor_consents=VENDOR), at(8)),  # purpose 4 missing
        ("c", tc(purposes=[1, 3, 4], vendor_consents=vendor_bitfield([1])), at(8)),  # vendor 755 missing
        ("d", tc(purposes=[1, 3, 4], vendor_consents=VENDOR, restrictions=restriction(4, 0, 755)), at(8)),
        ("e", tc(purposes=[1, 3, 4], vendor_consents=VENDOR, cmp_id=1), at(8)),  # unusable: unregistered CMP
        ("f", "CPxyz-not-a-tc-string", at(8)),
        ("g", good, at(8)), ("g", tc(purposes=[1], vendor_consents=VENDOR), at(9)),
        ("h", tc(purposes=[1, 3], li_purposes=[4], vendor_consents=VENDOR, policy_version=2), at(8)),
    ]  # fmt: skip
    db.table("raw.tc_strings", "customer_id varchar, euconsent_v2 varchar, seen_at timestamp", rows)
    db.ingest(TCF)
    assert statuses(db, "a") == ["granted"]
    assert (
        statuses(db, "b") == ["denied"]
        and statuses(db, "c") == ["denied"]
        and statuses(db, "d") == ["denied"]
    )
    assert statuses(db, "e") == ["invalid"] and statuses(db, "f") == ["invalid"]
    assert statuses(db, "g") == ["withdrawn"]  # latest string only; a withdrawal: the earlier one granted
    assert statuses(db, "h") in (["denied"], ["invalid"])  # legitimate interest never stands in for consent
    assert db.kept(list("abcdefgh")) == {"a"}


USNAT_SALE_OPT_OUT = (
    bits(2, 6) + two_bits(1, 1, 1, 1, 1, 1, 1, 2, 2) + two_bits(*[0] * 16) + two_bits(0, 0, 0)
)
USNAT_SALE_OPT_OUT += two_bits(0, 1, 2, 2)
USNAT_NOT_OPTED_OUT = (
    bits(2, 6) + two_bits(1, 1, 1, 1, 1, 1, 2, 2, 2) + two_bits(*[0] * 16) + two_bits(0, 0, 0)
)
USNAT_NOT_OPTED_OUT += two_bits(0, 1, 2, 2)


def compressed(bitstring: str) -> str:
    bitstring += "0" * (-len(bitstring) % 8)
    return b64(bitstring, pad=6)


GPP = {
    "name": "gpp_strings", "kind": "gpp", "table": "raw.gpp",
    "columns": {"subject": "customer_id", "signal": "gpp_string", "event_ts": "seen_at"},
    "purposes": {"ad_targeting": {"tcf_purposes": [1, 3, 4], "vendors": [755], "us_opt_outs": ["SaleOptOut"], "gpc": True}},
}  # fmt: skip


def test_gpp_tcf_section_grants_and_us_sections_only_withdraw(db) -> None:
    good_tc = tc(purposes=[1, 3, 4], vendor_consents=VENDOR)
    gpc_on = b64(bits(1, 2) + "1", pad=6)
    rows = [
        ("a", "~".join([gpp_header([2]), good_tc]), at(8)),
        ("a", "~".join([gpp_header([7]), compressed(USNAT_SALE_OPT_OUT)]), at(9)),
        ("b", "~".join([gpp_header([2]), good_tc]), at(8)),
        ("b", "~".join([gpp_header([7]), compressed(USNAT_NOT_OPTED_OUT)]), at(9)),
        ("c", "~".join([gpp_header([7]), compressed(USNAT_NOT_OPTED_OUT)]), at(8)),
        ("d", "~".join([gpp_header([2]), good_tc]), at(8)),
        ("d", "~".join([gpp_header([7]), compressed(USNAT_NOT_OPTED_OUT) + "." + gpc_on]), at(9)),
        ("e", "DBABMA~garbage", at(8)),
    ]
    db.table("raw.gpp", "customer_id varchar, gpp_string varchar, seen_at timestamp", rows)
    (rec,) = db.ingest(GPP)
    assert statuses(db, "a") == ["withdrawn"]  # the latest string of the batch decides
    assert statuses(db, "b") == ["granted"] and statuses(db, "c") == []
    assert statuses(db, "d") == ["withdrawn"] and statuses(db, "e") == ["invalid"]
    assert rec.rejected == {"no_opt_out": 2}
    assert db.kept(list("abcde")) == {"b"}


def test_a_tc_string_that_stops_granting_the_next_night_withdraws_and_repeats_write_nothing(db) -> None:
    good = tc(purposes=[1, 3, 4], vendor_consents=VENDOR)
    db.table(
        "raw.tc_strings",
        "customer_id varchar, euconsent_v2 varchar, seen_at timestamp",
        [("a", good, at(8)), ("a", good, at(9))],
    )
    (first,) = db.ingest(TCF)
    db.insert(
        "raw.tc_strings", [("a", good, at(10)), ("a", tc(purposes=[1, 3], vendor_consents=VENDOR), at(11))]
    )
    (second,) = db.ingest(TCF)
    db.insert("raw.tc_strings", [("a", tc(purposes=[1, 3], vendor_consents=VENDOR), at(12))])
    (third,) = db.ingest(TCF)
    assert [first.events_written, second.events_written, third.events_written] == [1, 1, 0]
    assert statuses(db, "a") == ["granted", "withdrawn"]
    assert db.kept(["a"]) == set()
