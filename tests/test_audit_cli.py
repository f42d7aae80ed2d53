"""`jindou audit verify` and `jindou audit replay` against a real SQLite file and PostgreSQL
database that someone edited behind the application's back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest

from api.cli import main
from domain.accounts import Account
from domain.people import RegisterCommunity
from infra.audit import ProgressBar, replay_and_compare, verify_chain
from infra.settings import Settings
from infra.wiring import Services, build_services
from tests.audit_history import RawDatabase, make_history, rewrite_chain_and_tree, stored_history
from tests.conftest import ADMIN_TOKEN
from tests.support import api_for, new_key

STORED = pytest.mark.backends("sqlite", "postgres")  # memory:// keeps nothing for a command to open
JINDOU = Path(sys.executable).with_name("jindou")


@pytest.fixture
def history(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Services]:
    """A closed-over history in the database; the commands open it afresh through the env."""
    with stored_history(database_url, monkeypatch, seed=4) as services:
        yield services


def audit(command: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["audit", command])
    return code, capsys.readouterr().out


@STORED
def test_verify_passes_on_an_untouched_store(history: Services, capsys) -> None:
    code, out = audit("verify", capsys)
    events = history.app.recorder.max_notification_id()
    assert code == 0, out
    assert out.startswith(f"OK: {events} events verified") and f"through position {events}" in out


@STORED
def test_verify_names_an_event_whose_state_was_edited(history: Services, capsys) -> None:
    raw = RawDatabase(history)
    position = raw.positions_of("Donation.Made")[0]
    raw.edit_state(position, amount=1000)
    code, out = audit("verify", capsys)
    assert code == 1
    assert out.startswith(f"FAILED at position {position}: hash mismatch"), out


@STORED
def test_verify_walk_recomputes_here_and_finds_the_same(history: Services, capsys) -> None:
    """`--walk`: every hash recomputed in this process (PostgreSQL would otherwise check them itself)."""
    events = history.app.recorder.max_notification_id()
    assert main(["audit", "verify", "--walk"]) == 0
    assert capsys.readouterr().out.startswith(f"OK: {events} events verified")
    raw = RawDatabase(history)
    position = raw.positions_of("Donation.Made")[0]
    raw.edit_state(position, amount=1000)
    assert main(["audit", "verify", "--walk"]) == 1
    assert capsys.readouterr().out.startswith(f"FAILED at position {position}: hash mismatch")


@STORED
def test_verify_names_an_edited_topic(history: Services, capsys) -> None:
    raw = RawDatabase(history)
    position = raw.positions_of("Report.Verified")[-1]
    raw.execute(f"UPDATE {raw.events_table} SET topic = ? WHERE {raw.position_column} = ?",
                ("domain.reports:Report.Rejected", position))
    code, out = audit("verify", capsys)
    assert code == 1 and out.startswith(f"FAILED at position {position}: the chain recorded"), out


@STORED
def test_verify_names_a_removed_event(history: Services, capsys) -> None:
    raw = RawDatabase(history)
    position = raw.positions_of("Report.Verified")[1]
    raw.delete_event(position)
    code, out = audit("verify", capsys)
    assert code == 1 and out.startswith(f"FAILED at position {position}: ") and "event removed" in out, out


@STORED
def test_verify_names_an_event_moved_out_of_order(history: Services, capsys) -> None:
    raw = RawDatabase(history)
    first, second = raw.positions_of("Report.Verified")[:2]
    raw.move_event(first, 10_000)
    raw.move_event(second, first)  # a later event now sits where an earlier one was chained
    code, out = audit("verify", capsys)
    assert code == 1 and out.startswith(f"FAILED at position {first}: the chain recorded"), out
    assert "event replaced or moved" in out


@STORED
def test_verify_names_an_event_inserted_into_chained_history(history: Services, capsys) -> None:
    raw = RawDatabase(history)
    gap = raw.positions_of("Report.Verified")[0]
    copy = raw.event_at(gap)
    raw.delete_event(gap)
    raw.execute("DELETE FROM audit_chain WHERE position = ?", (gap,))  # hide it from the chain as well
    raw.execute(
        f"INSERT INTO {raw.events_table} ({raw.position_column}, originator_id, originator_version, topic, state)"
        " VALUES (?, ?, ?, ?, ?)",
        (gap, copy["originator_id"], copy["originator_version"], copy["topic"], copy["state"]),
    )
    code, out = audit("verify", capsys)
    assert code == 1 and out.startswith(f"FAILED at position {gap}: the store has an event here that the chain never"), out


@STORED
def test_verify_catches_the_last_event_removed_with_its_chain_record(history: Services, capsys) -> None:
    raw = RawDatabase(history)
    last = history.app.recorder.max_notification_id()
    raw.delete_event(last)
    raw.execute("DELETE FROM audit_chain WHERE position = ?", (last,))
    code, out = audit("verify", capsys)
    assert code == 1 and out.startswith(f"FAILED at position {last}: the read model projected"), out


@STORED
def test_verify_checks_before_projecting_and_notes_events_not_yet_chained(history: Services, capsys) -> None:
    # An event recorded but not yet projected (the service stopped in between).
    admin = history.app.authenticate(ADMIN_TOKEN)
    assert admin is not None
    history.app.writer.read_model = None  # recorded without its projection, as if stopped right after
    history.app.execute(RegisterCommunity(name="新社区"), admin)
    chained, recorded = history.projector.position, history.app.recorder.max_notification_id()
    assert recorded > chained
    code, out = audit("verify", capsys)
    assert code == 0, out
    assert f"events after position {chained} (up to {recorded}) are not chained yet" in out
    raw = RawDatabase(history)
    assert raw.execute("SELECT position FROM audit_chain WHERE position > ?", (chained,)) == []  # verify wrote nothing


@STORED
def test_verify_checks_snapshots_against_the_events_they_summarise(history: Services, capsys) -> None:
    volunteer = UUID(make_history_volunteer(history))
    history.app.take_snapshot(volunteer)
    assert audit("verify", capsys)[0] == 0
    raw = RawDatabase(history)
    table = history.app.snapshots.recorder.events_table_name  # type: ignore[union-attr]
    row = raw.execute(f"SELECT originator_version, state FROM {table}")[0]
    position = raw.execute(
        f"SELECT {raw.position_column} AS position FROM {raw.events_table} WHERE originator_version = ? AND topic LIKE ?"
        " AND originator_id = (SELECT originator_id FROM " + table + ")",
        (row["originator_version"], "%:Account.%"),
    )[0]["position"]
    raw.execute(f"UPDATE {table} SET state = ?", (bytes(row["state"]).replace(b'"bean":', b'"bean":1000+'),))
    code, out = audit("verify", capsys)
    assert code == 1 and out.startswith(f"FAILED at position {position}: a snapshot of {volunteer} cannot be read"), out
    raw.execute(f"UPDATE {table} SET state = ?", (bytes(row["state"]).replace(b'"status":"active"', b'"status":"frozen"'),))
    code, out = audit("verify", capsys)
    assert code == 1, out
    assert out.startswith(f"FAILED at position {position}: the snapshot of {volunteer} at version "
                          f"{row['originator_version']} differs from its events in status: snapshot altered"), out


@STORED
def test_verify_notes_a_snapshot_from_older_code_without_failing(history: Services, capsys) -> None:
    volunteer = UUID(make_history_volunteer(history))
    history.app.take_snapshot(volunteer)
    raw = RawDatabase(history)
    table = history.app.snapshots.recorder.events_table_name  # type: ignore[union-attr]
    state = json.loads(bytes(raw.execute(f"SELECT state FROM {table}")[0]["state"]))
    del state["state"]["opened_by"]  # as if the class gained this attribute after the snapshot
    raw.execute(f"UPDATE {table} SET state = ?", (json.dumps(state).encode(),))
    code, out = audit("verify", capsys)
    assert code == 0, out
    assert f"note: the snapshot of {volunteer} at version " in out and "lacks ['opened_by'] and has []" in out


@STORED
def test_verify_holds_the_store_to_heads_published_before_it_was_rewritten(history: Services, capsys, tmp_path) -> None:
    with api_for(history, ADMIN_TOKEN) as api:
        kept = api.ok("GET", "/v1/audit/chain", ADMIN_TOKEN)
        api.community()  # history goes on after the head was published
    audit_json = tmp_path / "chain.json"
    audit_json.write_text(json.dumps(kept))
    report_json = tmp_path / "fund-report.json"
    report_json.write_text(json.dumps({"period": "2026-11", "chain_head": kept["head"], "events_count": kept["events_count"]}))
    assert main(["audit", "verify", "--published", str(audit_json), "--published", str(report_json)]) == 0
    assert "OK: 2 published head(s) match" in capsys.readouterr().out

    raw = RawDatabase(history)
    raw.edit_state(raw.positions_of("Donation.Made")[0], amount=1000)
    rewrite_chain_and_tree(history, raw)  # and the transparency tree, which verify also recomputes
    assert audit("verify", capsys)[0] == 0  # the database alone can no longer tell
    code = main(["audit", "verify", "--published", str(report_json)])
    out = capsys.readouterr().out
    cut = history.app.recorder.select_notifications(start=1, limit=kept["events_count"])[-1].id
    assert code == 1 and out.startswith(f"FAILED at position {cut}: {report_json} published head {kept['head']}"), out


def test_verify_refuses_a_published_file_it_cannot_read(tmp_path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("JINDOU_DATABASE_URL", f"sqlite:///{tmp_path / 'jindou.db'}")
    bad = tmp_path / "bad.json"
    bad.write_text('{"head": "abc", "events_count": 3}')
    assert main(["audit", "verify", "--published", str(bad)]) == 2
    assert "needs a 64-hex-digit chain_head" in capsys.readouterr().err
    assert main(["audit", "verify", "--published", str(tmp_path / "missing.json")]) == 2


@STORED
def test_the_installed_command_fails_on_tampering(history: Services) -> None:
    env = {**os.environ, "JINDOU_DATABASE_URL": history.settings.database_url}
    untouched = subprocess.run([str(JINDOU), "audit", "verify"], env=env, capture_output=True, text=True, timeout=120)
    assert untouched.returncode == 0, untouched.stdout + untouched.stderr
    assert "verify: 100%" in untouched.stderr  # progress, a line per tenth when stderr is not a terminal
    raw = RawDatabase(history)
    position = raw.positions_of("Donation.Made")[-1]
    raw.edit_state(position, amount=1)
    tampered = subprocess.run([str(JINDOU), "audit", "verify"], env=env, capture_output=True, text=True, timeout=120)
    assert tampered.returncode == 1
    assert f"FAILED at position {position}" in tampered.stdout


@STORED
def test_replay_equals_live_after_a_generated_history(history: Services, capsys) -> None:
    code, out = audit("replay", capsys)
    assert code == 0, out
    assert f"through position {history.app.recorder.max_notification_id()}" in out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_replay_equals_live_on_every_backend(services: Services, seed: int) -> None:
    make_history(services, seed=seed, steps=15)
    report = replay_and_compare(services.app, services.store)
    assert report.ok, [t for t in report.tables if t.count]
    assert report.events_replayed == len(services.app.recorder.select_notifications(start=1, limit=10_000))
    assert {"ledger_balances", "ledger_entries", "audit_chain"} <= {t.table for t in report.tables}
    assert verify_chain(services.app, services.store).ok


@STORED
def test_replay_names_a_read_model_row_edited_directly(history: Services, capsys) -> None:
    volunteer = make_history_volunteer(history)
    RawDatabase(history).execute(
        "UPDATE ledger_balances SET balance = balance + 100 WHERE account_id = ? AND asset = 'bean'", (volunteer,)
    )
    code, out = audit("replay", capsys)
    assert code == 1
    assert "ledger_balances: 1 difference(s)" in out and f"('{volunteer}', 'bean'): balance live=" in out
    assert "ledger invariants (live): 1 difference(s)" in out  # Σ balances is no longer 0
    assert "FAILED" in out


@STORED
def test_replay_compares_every_public_fund_report(history: Services, capsys) -> None:
    community_id = history.app.reader().get(Account, UUID(make_history_volunteer(history)), "account").community_id
    today = datetime.now(UTC).date().isoformat()
    with api_for(history, ADMIN_TOKEN) as api:
        donation = {"community_id": str(community_id), "donor": "爱心企业", "amount_fen": 500_000,
                    "received_on": today, "reference": "转账 001"}
        api.ok("POST", "/v1/fund/donations", ADMIN_TOKEN, donation, key=new_key(), status=201)
    code, out = audit("replay", capsys)
    assert code == 0, out
    RawDatabase(history).execute("UPDATE fund_movements SET donations_fen = donations_fen - 100000")
    code, out = audit("replay", capsys)
    assert code == 1 and "fund_movements: 1 difference(s)" in out
    period = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    assert "public fund reports: " in out and f"{community_id} {period}: donations_fen live=400000 replay=500000" in out


@STORED
def test_replay_names_a_holder_below_zero_even_when_the_sums_balance(history: Services, capsys) -> None:
    volunteer = make_history_volunteer(history)
    raw = RawDatabase(history)
    raw.execute("UPDATE ledger_balances SET balance = -5 WHERE account_id = ? AND asset = 'bean'", (volunteer,))
    total = raw.execute("SELECT SUM(balance) AS total FROM ledger_balances WHERE asset = 'bean'")[0]["total"]
    issuance = raw.execute("SELECT account_id FROM ledger_balances WHERE account_id LIKE ? LIMIT 1", ("%:issuance",))[0]["account_id"]
    raw.execute("UPDATE ledger_balances SET balance = balance - ? WHERE account_id = ? AND asset = 'bean'", (int(total), issuance))
    code, out = audit("replay", capsys)
    assert code == 1 and f"holder {volunteer} holds -5 bean" in out
    assert "Σ balances" not in out


@STORED
def test_replay_names_a_chain_row_rewritten_directly(history: Services, capsys) -> None:
    RawDatabase(history).execute("UPDATE audit_chain SET hash = ? WHERE position = 3", ("00" * 32,))
    code, out = audit("replay", capsys)
    assert code == 1 and "audit_chain: 1 difference(s)" in out and "(3,): hash live='" in out


@STORED
def test_replay_fails_on_an_event_it_cannot_apply(history: Services, capsys) -> None:
    raw = RawDatabase(history)
    raw.execute(f"UPDATE {raw.events_table} SET state = ? WHERE {raw.position_column} = 3", (b"not json",))
    code, out = audit("replay", capsys)
    assert code == 1 and out.startswith("FAILED: replay stopped on an event it could not apply"), out


def make_history_volunteer(services: Services) -> str:
    with services.store.read() as cursor:
        row = cursor.one("SELECT account_id FROM ledger_accounts WHERE kind = 'volunteer' ORDER BY account_id LIMIT 1")
    assert row is not None
    return str(row["account_id"])


class FakeTerminal:
    def __init__(self, terminal: bool) -> None:
        self.terminal = terminal
        self.written: list[str] = []

    def isatty(self) -> bool:
        return self.terminal

    def write(self, text: str) -> None:
        self.written.append(text)

    def flush(self) -> None:
        pass


def test_progress_draws_a_live_bar_on_a_terminal() -> None:
    stream = FakeTerminal(terminal=True)
    bar = ProgressBar(stream, "replay")  # type: ignore[arg-type]
    for done in range(0, 1001, 250):
        bar(done, 1000)
    bar.finish()
    drawn = "".join(stream.written)
    assert "replay" in drawn and "1000/1000" in drawn and "100%" in drawn
    assert "replay: 100%" not in drawn  # a redrawn bar, not the line-per-tenth record


def test_progress_writes_a_line_per_tenth_elsewhere() -> None:
    stream = FakeTerminal(terminal=False)
    bar = ProgressBar(stream, "verify")  # type: ignore[arg-type]
    for done in range(0, 10_001, 100):
        bar(done, 10_000)
    bar.finish()
    assert stream.written == [f"verify: {p}% ({p * 100}/10000)\n" for p in range(0, 101, 10)]


def test_replay_and_verify_of_an_empty_store_pass(tmp_path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    build_services(Settings(database_url=url)).close()  # a store that exists, with no events yet
    monkeypatch.setenv("JINDOU_DATABASE_URL", url)
    monkeypatch.delenv("JINDOU_ADMIN_TOKEN", raising=False)
    code, out = audit("verify", capsys)
    assert code == 0 and out.startswith("OK: 0 events verified, chain head " + "0" * 64 + " (through position 0)\n")
    code, out = audit("replay", capsys)
    assert code == 0 and out.startswith("OK: replayed 0 events through position 0"), out


def test_an_api_history_keeps_verifying_as_it_grows(services: Services) -> None:
    with api_for(services, ADMIN_TOKEN) as api:
        community = api.community()
        for _ in range(3):
            api.account(community["id"], "volunteer")
            report = verify_chain(services.app, services.store)
            assert report.ok and report.chained_through == services.app.recorder.max_notification_id()
