"""The writer without a look at the log's head (decision 0030): alone on its log it decides on
its cache as it stands; whatever another process records meanwhile is seen before any decision
is answered, whether the decision records something, refuses, or replays a key."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import OperationalError

from domain.bus import Actor
from domain.credentialing import IssueAccountToken
from domain.donating import Donate
from domain.errors import OutcomeUnknown
from domain.money import Asset
from domain.people import OpenAccount
from domain.writer import Writer, _Job
from infra.settings import Settings
from infra.wiring import Services, build_services
from tests.conftest import ADMIN_TOKEN
from tests.support import AppCommunity, api_for, check_invariants, new_app_community

pytestmark = pytest.mark.backends("sqlite", "postgres")


@contextmanager
def elsewhere(services: Services, community: AppCommunity, tmp_path: Path) -> Iterator[AppCommunity]:
    """The same community, through another process's application on the same database."""
    other = build_services(Settings(database_url=services.settings.database_url, admin_token=ADMIN_TOKEN,
                                    transparency_key_file=str(tmp_path / "signing.key")))
    try:
        yield AppCommunity(other, community.admin, community.id, community.staff)
    finally:
        other.close()


def giver(services: Services, beans: int) -> tuple[AppCommunity, Actor, Actor]:
    """A community with a volunteer who has `beans` to give, and an elder to give them to."""
    community = new_app_community(services)
    volunteer, elder = community.open("volunteer"), community.open("beneficiary")
    if beans:
        community.earn(volunteer, beans)
    return community, volunteer, elder


def no_look_at_the_head(monkeypatch: pytest.MonkeyPatch, services: Services) -> None:
    def refused(*_: Any, **__: Any) -> Any:
        raise AssertionError("the writer looked at the log's head")

    for name in ("max_notification_id", "head_and_events_of", "events_of", "select_events"):
        monkeypatch.setattr(services.app.recorder, name, refused, raising=False)


def test_alone_on_its_log_the_writer_decides_without_reading_the_database_first(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    community, volunteer, elder = giver(services, 9)
    app = community.app
    with monkeypatch.context() as offline:
        no_look_at_the_head(offline, services)
        for number in range(3):  # a key this process never saw is taken as unused: its record collides if not
            app.execute(Donate(to_account_id=elder.account_id, amount=2), volunteer, f"gift-{number}")
        writer = app.writer
        jobs = [_Job(*app._job(Donate(to_account_id=elder.account_id, amount=1), volunteer, f"group-{n}"))
                for n in range(2)]
        writer._record_group(jobs)  # two commands decided and saved as one group
        assert [job.answer().result["amount"] for job in jobs] == [1, 1]
    assert community.balance(volunteer) == 1 and community.balance(elder) == 8
    assert app.writer.moved == 0
    check_invariants(services)


def test_when_the_database_fails_every_command_of_a_group_decided_on_memory_is_answered(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refusal waits for its group's check; when the save fails instead, it gets the failure:
    nothing confirms the state it was decided on."""
    community, volunteer, elder = giver(services, 3)
    app = community.app
    app.execute(Donate(to_account_id=elder.account_id, amount=1), volunteer)  # the writer is current again
    jobs = [_Job(*app._job(Donate(to_account_id=elder.account_id, amount=1), volunteer, "failing")),
            _Job(*app._job(Donate(to_account_id=elder.account_id, amount=50), volunteer, None))]  # refused: 2 left
    assert app.writer._current()

    def database_gone(*_: Any, **__: Any) -> Any:
        raise OperationalError("the server closed the connection")

    with monkeypatch.context() as failing:
        failing.setattr(app, "save", database_gone)
        app.writer._record_group(jobs)
    assert all(job.done.is_set() for job in jobs), "every request is answered"
    assert all(isinstance(job.error, OutcomeUnknown) for job in jobs)
    assert community.balance(volunteer) == 2


def test_a_refusal_is_answered_only_after_what_another_process_recorded_is_seen(
    services: Services, tmp_path: Path
) -> None:
    community, volunteer, elder = giver(services, 0)
    app = community.app
    app.execute(OpenAccount(community_id=community.id, kind="volunteer", display_name="李四"), community.admin)
    assert community.balance(volunteer) == 0  # this process holds the volunteer at no beans
    with elsewhere(services, community, tmp_path) as other:
        other.earn(volunteer, 7)
    # On this process's memory alone the volunteer has nothing to give: refused, if answered on it.
    outcome = app.execute(Donate(to_account_id=elder.account_id, amount=7), volunteer)
    assert outcome.result["amount"] == 7
    assert app.writer.moved >= 1
    assert community.balance(volunteer) == 0 and community.balance(elder) == 7
    check_invariants(services)


def test_a_group_decided_while_another_process_recorded_is_decided_again_and_recorded_once(
    services: Services, tmp_path: Path
) -> None:
    community, volunteer, elder = giver(services, 5)
    app = community.app
    app.execute(Donate(to_account_id=elder.account_id, amount=1), volunteer)  # the writer is current again
    moved = app.writer.moved
    with elsewhere(services, community, tmp_path) as other:
        other.open("merchant", merchant_categories=("meal",))  # touches nothing this process decides on
    jobs = [_Job(*app._job(Donate(to_account_id=elder.account_id, amount=2), volunteer, f"after-{n}"))
            for n in range(2)]
    app.writer._record_group(jobs)
    assert [job.answer().result["amount"] for job in jobs] == [2, 2]
    assert app.writer.moved == moved + 1, "its first transaction found the log moved and rolled back"
    assert community.balance(volunteer) == 0 and community.balance(elder) == 5
    check_invariants(services)


def test_a_token_another_process_replaced_is_refused_though_this_process_still_held_it_live(
    services: Services, tmp_path: Path
) -> None:
    """A decision that only reads what another process changed (here the credential) collides
    with nothing it writes: the transaction's check of the log is what refuses it."""
    community = new_app_community(services)
    opened = community.app.execute(OpenAccount(community_id=community.id, kind="volunteer", display_name="丰国兆"),
                                   community.staff).result
    volunteer, elder = community.actor(opened["token"]), community.open("beneficiary")
    community.earn(volunteer, 5)
    gift = {"to_account_id": str(elder.account_id), "amount": 1}
    with api_for(services, ADMIN_TOKEN) as api:
        api.ok("POST", "/v1/donations", opened["token"], gift, key="first", status=201)  # held live, and current
        with elsewhere(services, community, tmp_path) as other:
            other.app.execute(IssueAccountToken(account_id=volunteer.account_id), community.staff)  # the old one dies
        refused = api.call("POST", "/v1/donations", opened["token"], gift, key="second")
        metrics = api.call("GET", "/metrics").text
    assert refused.status_code == 401, refused.text
    assert f"jindou_writer_moved {services.app.writer.moved}" in metrics and services.app.writer.moved >= 1
    assert community.balance(volunteer) == 4 and community.balance(elder) == 1
    check_invariants(services)


def test_a_key_another_process_used_is_replayed_not_recorded_again(services: Services, tmp_path: Path) -> None:
    community, volunteer, elder = giver(services, 6)
    app = community.app
    gift = Donate(to_account_id=elder.account_id, amount=4)
    app.execute(Donate(to_account_id=elder.account_id, amount=1), volunteer)  # the writer is current again
    with elsewhere(services, community, tmp_path) as other:
        first = other.app.execute(gift, volunteer, "the-same-request")
    again = app.execute(gift, volunteer, "the-same-request")  # this process never saw the key
    assert again.replayed and again.result == first.result
    assert community.balance(volunteer) == 1 and community.balance(elder) == 5
    check_invariants(services)


def test_a_writer_on_a_busy_shared_log_keeps_looking_at_the_head(services: Services, tmp_path: Path) -> None:
    """After finding another writer's events, a writer looks at the head before each group until
    a look finds none: it does not pay for a transaction rolled back on every group."""
    community, volunteer, elder = giver(services, 9)
    app = community.app
    donate = Donate(to_account_id=elder.account_id, amount=1)
    with elsewhere(services, community, tmp_path) as other:
        for _ in range(3):
            other.open("volunteer")
            app.execute(donate, volunteer)
    assert app.writer.moved == 1, "moved once, then looked first while the other process kept writing"
    assert isinstance(app.writer, Writer) and community.balance(volunteer, Asset.BEAN) == 6
