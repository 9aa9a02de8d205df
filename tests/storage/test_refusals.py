"""Events valid to the contract that the storage cannot take never cost their neighbours."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import text

from tests.factories import fill, market_data
from tradewatch.domain.events import FillPayload
from tradewatch.domain.events.parsing import ParsedEvent, parse_batch

RECEIVED = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)


def test_a_payload_that_cannot_be_written_as_json_is_rejected_alone(store):
    good = market_data(1)
    # Built directly (not parsed), so the parser's own check never saw it.
    broken = fill("o-1", payload=FillPayload(fill_id="f", side="buy", quantity=1, price=1, note="x\udfffy"))
    events = [ParsedEvent(good, good.model_dump_json(), 0), ParsedEvent(broken, "{}", 1)]
    result = store.ingest(events, batch_id="b", received_at=RECEIVED)
    assert (result.inserted, result.rejected) == (1, 1)
    [row] = store.rejected()
    assert row["position"] == 1 and "payload cannot be written as JSON" in row["reason"]


def test_a_value_the_database_refuses_is_isolated_and_the_batch_still_lands(pg_store):
    with pg_store.engine.begin() as conn:  # a narrower column than the contract allows
        conn.execute(text("ALTER TABLE audit_events ALTER COLUMN source TYPE varchar(12)"))
    items = [market_data(i).model_dump_json() for i in range(3)]
    items.insert(1, market_data(9, source="an-engine-with-a-long-name").model_dump_json())
    good, bad = parse_batch(items)
    result = pg_store.ingest(good, bad, batch_id="refused-batch", received_at=RECEIVED)
    assert (result.inserted, result.rejected) == (3, 1)
    [row] = pg_store.rejected()
    assert row["code"] == "refused" and row["position"] == 1
    assert "the database refused it" in row["reason"] and "too long" in row["reason"]
