"""Credentials through the application, on memory, SQLite and PostgreSQL: new tokens kill the
earlier ones, revocation, rotation (the bootstrap token stays dead across restarts), sign-in
codes (single use, also under concurrency and across processes) and the guessing limits that
several processes share."""

from __future__ import annotations

import threading
from datetime import timedelta
from uuid import UUID, uuid4

import pytest

from domain.application import Jindou
from domain.bus import Actor
from domain.card_sheets import PrepareCardSheet
from domain.credentialing import (
    STRANGER,
    IssueAccountSignInCode,
    IssueAccountToken,
    IssueStaffSignInCode,
    IssueStaffToken,
    RevokeStaff,
    RotateToken,
    SignIn,
    displayable_sign_in_code,
)
from domain.credentials import (
    LIVE_CREDENTIALS_MAX,
    SIGN_IN_CODE_DIGITS,
    SIGN_IN_CODE_LIFETIME,
)
from domain.errors import Forbidden, InvalidSignInCode, NotFound, RateLimited
from domain.paying import IssueCard
from domain.people import CONSOLE, OpenAccount, RegisterOperatorStaff
from domain.writer import Outcome
from infra.ratelimit import SIGN_IN_CODE_FAILURES_MAX
from infra.settings import Settings
from infra.wiring import Services, build_services
from tests.conftest import ADMIN_TOKEN
from tests.support import AppCommunity, new_app_community


@pytest.fixture
def community(services: Services) -> AppCommunity:
    return new_app_community(services)


def sign_in(app: Jindou, code: object) -> Outcome:
    return app.execute(SignIn(code), STRANGER)


def token_of(outcome_result: dict) -> str:
    token = outcome_result["token"]
    assert isinstance(token, str) and token.startswith("jd_")
    return token


def test_a_new_account_token_kills_every_earlier_one(community: AppCommunity) -> None:
    app = community.app
    opened = app.execute(OpenAccount(community_id=community.id, kind="beneficiary", display_name="张阿姨"),
                         community.staff)
    first = opened.result["token"]
    account_id = UUID(opened.result["id"])
    code = app.execute(IssueAccountSignInCode(account_id=account_id), community.staff).result["code"]
    signed_in = sign_in(app, code).result["token"]
    assert app.authenticate(first) is not None and app.authenticate(signed_in) is not None
    newest = token_of(app.execute(IssueAccountToken(account_id=account_id), community.staff).result)
    assert app.authenticate(first) is None and app.authenticate(signed_in) is None
    holder = app.authenticate(newest)
    assert holder is not None and holder.account_id == account_id and holder.role == "beneficiary"
    again = token_of(app.execute(IssueAccountToken(account_id=account_id), community.admin).result)
    assert app.authenticate(newest) is None and app.authenticate(again) is not None


def test_only_the_communitys_staff_issue_a_holders_token(community: AppCommunity) -> None:
    app = community.app
    volunteer = community.open("volunteer")
    elsewhere = new_app_community(community.services)
    with pytest.raises(Forbidden):
        app.execute(IssueAccountToken(account_id=volunteer.account_id), elsewhere.staff)
    with pytest.raises(Forbidden):
        app.execute(IssueAccountToken(account_id=volunteer.account_id), volunteer)
    with pytest.raises(Forbidden):
        app.execute(IssueAccountToken(account_id=volunteer.account_id), community.register_staff("auditor"))
    with pytest.raises(NotFound):
        app.execute(IssueAccountToken(account_id=uuid4()), community.staff)
    assert app.authenticate(community.services.app.execute(
        IssueAccountToken(account_id=volunteer.account_id), community.staff).result["token"]) is not None


def test_staff_tokens_revocation_and_who_may_do_it(community: AppCommunity) -> None:
    app = community.app
    clerk = community.register_staff("staff")
    colleague = community.register_staff("staff")
    own = token_of(app.execute(IssueStaffToken(staff_id=clerk.principal_id), clerk).result)  # a staff member for itself
    assert app.authenticate(own) is not None
    with pytest.raises(Forbidden):
        app.execute(IssueStaffToken(staff_id=clerk.principal_id), colleague)
    with pytest.raises(Forbidden):
        app.execute(RevokeStaff(staff_id=clerk.principal_id), clerk)  # revoking is an admin's decision
    local_admin = community.register_staff("admin")
    elsewhere = new_app_community(community.services).register_staff("admin")
    with pytest.raises(Forbidden):
        app.execute(RevokeStaff(staff_id=clerk.principal_id), elsewhere)
    with pytest.raises(Forbidden):
        # the deployment's admin is not theirs
        app.execute(IssueStaffToken(staff_id=community.admin.principal_id), local_admin)
    by_admin = token_of(app.execute(IssueStaffToken(staff_id=clerk.principal_id), local_admin).result)
    assert app.authenticate(own) is None
    own_code = app.execute(IssueStaffSignInCode(staff_id=clerk.principal_id), clerk).result["code"]
    phone = sign_in(app, own_code).result["token"]
    revoked = app.execute(RevokeStaff(staff_id=clerk.principal_id), local_admin).result
    assert revoked == {"id": str(clerk.principal_id), "revoked": 2}
    assert app.authenticate(by_admin) is None and app.authenticate(phone) is None
    assert app.execute(RevokeStaff(staff_id=clerk.principal_id), local_admin).result["revoked"] == 0
    with pytest.raises(NotFound):
        app.execute(RevokeStaff(staff_id=uuid4()), local_admin)
    assert app.authenticate(token_of(
        app.execute(IssueStaffToken(staff_id=clerk.principal_id), local_admin).result)) is not None


def test_a_reset_kills_the_sign_in_codes_handed_out_before_it(community: AppCommunity) -> None:
    app = community.app
    beneficiary = community.open("beneficiary")
    pending = app.execute(IssueAccountSignInCode(account_id=beneficiary.account_id), community.staff).result["code"]
    app.execute(IssueAccountToken(account_id=beneficiary.account_id), community.staff)  # the phone was lost
    with pytest.raises(InvalidSignInCode):
        sign_in(app, pending)
    with pytest.raises(NotFound):
        displayable_sign_in_code(app.reader(), community.staff, beneficiary.account_id, pending)
    fresh = app.execute(IssueAccountSignInCode(account_id=beneficiary.account_id), community.staff).result["code"]
    assert app.authenticate(sign_in(app, fresh).result["token"]) is not None

    clerk = community.register_staff("staff")
    own_code = app.execute(IssueStaffSignInCode(staff_id=clerk.principal_id), clerk).result["code"]
    app.execute(RevokeStaff(staff_id=clerk.principal_id), community.admin)  # the clerk left
    with pytest.raises(InvalidSignInCode):
        sign_in(app, own_code)


def test_rotation_replaces_only_the_callers_token(community: AppCommunity) -> None:
    app = community.app
    code = app.execute(IssueAccountSignInCode(account_id=community.open("merchant").account_id),
                       community.staff).result["code"]
    laptop = sign_in(app, code).result["token"]
    phone = sign_in(app, app.execute(IssueAccountSignInCode(account_id=community.actor(laptop).account_id),
                                     community.staff).result["code"]).result["token"]
    rotated = token_of(app.execute(RotateToken(), community.actor(laptop)).result)
    assert app.authenticate(laptop) is None
    assert app.authenticate(phone) is not None and app.authenticate(rotated) is not None
    assert community.actor(rotated).role == "merchant"


@pytest.mark.backends("sqlite", "postgres")
def test_a_rotated_bootstrap_token_stays_dead_after_a_restart(database_url: str) -> None:
    first = build_services(Settings(database_url=database_url, admin_token=ADMIN_TOKEN))
    try:
        admin = first.app.authenticate(ADMIN_TOKEN)
        assert admin is not None and admin.role == "admin" and admin.community_id is None
        replacement = token_of(first.app.execute(RotateToken(), admin).result)
        assert first.app.authenticate(ADMIN_TOKEN) is None
    finally:
        first.close()
    restarted = build_services(Settings(database_url=database_url, admin_token=ADMIN_TOKEN))
    try:
        assert restarted.app.authenticate(ADMIN_TOKEN) is None
        new_admin = restarted.app.authenticate(replacement)
        assert new_admin is not None and new_admin.role == "admin" and new_admin.community_id is None
    finally:
        restarted.close()


def test_a_principal_holds_a_bounded_number_of_tokens(community: AppCommunity) -> None:
    app = community.app
    opened = app.execute(OpenAccount(community_id=community.id, kind="volunteer", display_name="小李"),
                         community.staff).result
    tokens = [opened["token"]] + [
        sign_in(app, app.execute(IssueAccountSignInCode(account_id=UUID(opened["id"])),
                                 community.staff).result["code"]).result["token"]
        for _ in range(LIVE_CREDENTIALS_MAX)
    ]
    live = [token for token in tokens if app.authenticate(token) is not None]
    assert live == tokens[1:]  # one more than the bound: the oldest died


def test_sign_in_codes_are_digits_single_use_and_expire(community: AppCommunity) -> None:
    app = community.app
    volunteer = community.open("volunteer")
    issued = app.execute(IssueAccountSignInCode(account_id=volunteer.account_id), community.staff).result
    code = issued["code"]
    assert code.isdigit() and 8 <= len(code) == SIGN_IN_CODE_DIGITS <= 12
    assert issued["kind"] == "volunteer" and issued["account_id"] == str(volunteer.account_id)
    assert issued["expires_at"].endswith("+08:00")
    signed_in = sign_in(app, code).result
    assert set(signed_in) == {"token", "account_id", "kind"}
    assert signed_in["account_id"] == str(volunteer.account_id) and signed_in["kind"] == "volunteer"
    assert community.actor(signed_in["token"]).account_id == volunteer.account_id
    assert app.authenticate(volunteer_token := sign_in(app, app.execute(
        IssueAccountSignInCode(account_id=volunteer.account_id), community.staff).result["code"]).result["token"])
    assert volunteer_token != signed_in["token"]
    with pytest.raises(InvalidSignInCode):
        sign_in(app, code)  # spent
    for wrong in ("0" * SIGN_IN_CODE_DIGITS, "12ab", "", "1" * 40, None, 12345678, "１２３４５６７８９０１２"):
        with pytest.raises(InvalidSignInCode):
            sign_in(app, wrong)
    late = app.execute(IssueAccountSignInCode(account_id=volunteer.account_id), community.staff).result["code"]
    real_now = app.now
    app.now = lambda: real_now() + SIGN_IN_CODE_LIFETIME + timedelta(seconds=1)  # type: ignore[method-assign]
    try:
        with pytest.raises(InvalidSignInCode):
            sign_in(app, late)
    finally:
        app.now = real_now  # type: ignore[method-assign]


def test_staff_sign_in_answers_with_the_staff_members_role(community: AppCommunity) -> None:
    app = community.app
    auditor = community.register_staff("auditor")
    issued = app.execute(IssueStaffSignInCode(staff_id=auditor.principal_id), community.admin).result
    assert issued["kind"] == "staff" and issued["staff_id"] == str(auditor.principal_id)
    signed_in = sign_in(app, issued["code"]).result
    assert signed_in == {
        "token": signed_in["token"], "staff_id": str(auditor.principal_id), "role": "auditor",
        "community_id": str(community.id), "kind": "staff",
    }
    assert community.actor(signed_in["token"]).role == "auditor"
    with pytest.raises(Forbidden):
        app.execute(IssueStaffSignInCode(staff_id=auditor.principal_id), community.staff)
    with pytest.raises(Forbidden):
        app.execute(IssueAccountSignInCode(account_id=community.open("volunteer").account_id), auditor)


def test_sign_in_codes_are_shown_only_to_those_who_may_hand_them_over(community: AppCommunity) -> None:
    app = community.app
    beneficiary = community.open("beneficiary")
    code = app.execute(IssueAccountSignInCode(account_id=beneficiary.account_id), community.staff).result["code"]
    shown = displayable_sign_in_code(app.reader(), community.staff, beneficiary.account_id, code)
    assert shown.principal_id == beneficiary.account_id
    with pytest.raises(Forbidden):
        displayable_sign_in_code(app.reader(), beneficiary, beneficiary.account_id, code)
    with pytest.raises(Forbidden):
        stranger = new_app_community(community.services).staff
        displayable_sign_in_code(app.reader(), stranger, beneficiary.account_id, code)
    with pytest.raises(NotFound):
        displayable_sign_in_code(app.reader(), community.staff, community.open("beneficiary").account_id, code)
    for wrong in ("1234", "x" * 12, "0" * SIGN_IN_CODE_DIGITS):
        with pytest.raises(NotFound):
            displayable_sign_in_code(app.reader(), community.staff, beneficiary.account_id, wrong)
    sign_in(app, code)
    with pytest.raises(NotFound):
        displayable_sign_in_code(app.reader(), community.staff, beneficiary.account_id, code)


def _two_processes(database_url: str) -> tuple[Services, Services]:
    """Two application instances over one database, each with its own writer as separate
    server processes have: only optimistic concurrency decides between them."""
    first = build_services(Settings(database_url=database_url, admin_token=ADMIN_TOKEN))
    second = build_services(Settings(database_url=database_url, admin_token=ADMIN_TOKEN))
    return first, second


def _race(*calls) -> list[object]:  # noqa: ANN002 — zero-argument callables
    """Run the calls at once; each one's result or the exception it raised."""
    outcomes: list[object] = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(index: int) -> None:
        barrier.wait()
        try:
            outcomes[index] = calls[index]()
        except Exception as error:  # noqa: BLE001 — the race's loser is part of the result
            outcomes[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@pytest.mark.backends("sqlite", "postgres")
def test_two_processes_signing_in_with_one_code_cannot_both_win(database_url: str) -> None:
    first, second = _two_processes(database_url)
    try:
        community = new_app_community(first)
        volunteer = community.open("volunteer")
        for _ in range(3):
            issuing = IssueAccountSignInCode(account_id=volunteer.account_id)
            code = first.app.execute(issuing, community.staff).result["code"]
            second.app.repository.get(volunteer.account_id)  # both have the keyring's history at hand
            outcomes = _race(lambda: sign_in(first.app, code), lambda: sign_in(second.app, code))
            winners = [o for o in outcomes if not isinstance(o, Exception)]
            losers = [o for o in outcomes if isinstance(o, Exception)]
            assert len(winners) == 1 and len(losers) == 1, outcomes
            assert isinstance(losers[0], InvalidSignInCode), losers
            assert first.app.authenticate(winners[0].result["token"]) is not None  # type: ignore[attr-defined]
    finally:
        first.close()
        second.close()


@pytest.mark.backends("sqlite", "postgres")
def test_a_sign_in_racing_a_new_token_from_another_process_never_survives_it(database_url: str) -> None:
    first, second = _two_processes(database_url)
    try:
        community = new_app_community(first)
        account_id = community.open("beneficiary").account_id
        staff_there = second.app.authenticate(ADMIN_TOKEN)
        assert staff_there is not None
        for _ in range(3):
            code = first.app.execute(IssueAccountSignInCode(account_id=account_id), community.staff).result["code"]
            outcomes = _race(lambda: sign_in(first.app, code),
                             lambda: second.app.execute(IssueAccountToken(account_id=account_id), staff_there))
            signing_in, replacing = outcomes
            assert first.app.authenticate(replacing.result["token"]) is not None  # type: ignore[attr-defined]
            # Either the sign-in came first and the replacement revoked its token, or the
            # replacement came first and killed the code: no way does a token survive beside it.
            if isinstance(signing_in, Exception):
                assert isinstance(signing_in, InvalidSignInCode), signing_in
            else:
                assert first.app.authenticate(signing_in.result["token"]) is None  # type: ignore[attr-defined]
    finally:
        first.close()
        second.close()


@pytest.mark.backends("sqlite", "postgres")
def test_guessing_limits_are_shared_by_every_process(database_url: str) -> None:
    first = build_services(Settings(database_url=database_url, admin_token=ADMIN_TOKEN))
    second = build_services(Settings(database_url=database_url, admin_token=ADMIN_TOKEN))
    try:
        for index in range(SIGN_IN_CODE_FAILURES_MAX):
            services = (first, second)[index % 2]
            services.sign_in_guesses.check("203.0.113.7")
            services.sign_in_guesses.record_failure("203.0.113.7")
        for services in (first, second):
            with pytest.raises(RateLimited) as refused:
                services.sign_in_guesses.check("203.0.113.7")
            assert 1 <= refused.value.details["retry_after_seconds"] <= 600
            services.sign_in_guesses.check("198.51.100.1")  # another client is not affected
            services.payment_code_guesses.check("203.0.113.7")  # nor another kind of code
    finally:
        first.close()
        second.close()


def test_guess_failures_count_per_client_within_the_window(services: Services) -> None:
    window = services.sign_in_guesses
    now = [1_000_000.0]
    window.clock = lambda: now[0]
    for _ in range(SIGN_IN_CODE_FAILURES_MAX):
        window.record_failure("client")
        now[0] += 1
    with pytest.raises(RateLimited):
        window.check("client")
    now[0] = 1_000_000.0 + window.window_seconds  # the first failure has left the window
    window.check("client")


def test_an_actor_without_a_credential_cannot_rotate(community: AppCommunity) -> None:
    stranger = Actor("admin", uuid4(), None, None, None)
    with pytest.raises(NotFound):
        community.app.execute(RotateToken(), stranger)


@pytest.mark.backends("sqlite", "postgres")
def test_every_process_can_reprint_a_card_another_issued(database_url: str) -> None:
    first, second = _two_processes(database_url)
    try:
        community = new_app_community(first)
        grandma = community.open("beneficiary", "张阿姨")
        sheet = PrepareCardSheet(community_id=community.id, account_ids=(str(grandma.account_id),))
        issued = first.app.execute(sheet, community.staff).result
        assert issued["cards_issued"] == 1 and issued["cards"][0]["daily_limit"] == 100
        staff_there = second.app.authenticate(ADMIN_TOKEN)
        assert staff_there is not None
        again = second.app.execute(sheet, staff_there).result
        assert again["cards_issued"] == 0  # the generated secret is shared through the database
        assert again["cards"][0]["card_code"] == issued["cards"][0]["card_code"]
        assert again["cards"][0]["sign_in"]["code"] != issued["cards"][0]["sign_in"]["code"]
    finally:
        first.close()
        second.close()


def test_a_configured_card_secret_derives_the_codes(database_url: str) -> None:
    from domain.payments import Card, card_code
    from infra.settings import SettingsError

    secret = "ab" * 32
    services = build_services(Settings(database_url=database_url, admin_token=ADMIN_TOKEN, card_secret=secret))
    try:
        community = new_app_community(services)
        grandma = community.open("beneficiary")
        code = services.app.execute(IssueCard(account_id=grandma.account_id, daily_limit=5), community.staff).result["card_code"]
        card = services.app.repository.get(Card.id_for(code))
        assert code == card_code(bytes.fromhex(secret), card.nonce) and len(code) == 24
    finally:
        services.close()
    for wrong in ("not hex", "ab" * 8):
        with pytest.raises(SettingsError):
            build_services(Settings(database_url=database_url, card_secret=wrong))
    settings = Settings.from_env({"JINDOU_PUBLIC_URL": "https://jindou.example.org/", "JINDOU_CARD_SECRET": secret})
    assert settings.public_url == "https://jindou.example.org" and settings.card_secret == secret


def test_a_console_made_admin_is_retired_like_any_other(services: Services) -> None:
    app = services.app
    made = app.execute(RegisterOperatorStaff(display_name="值班管理员", role="admin", community_id=None), CONSOLE).result
    console = app.authenticate(made["token"])
    assert console is not None and console.role == "admin"
    rotated = app.execute(RotateToken(), console).result["token"]
    assert app.authenticate(made["token"]) is None and app.authenticate(rotated) is not None
    admin = app.authenticate(ADMIN_TOKEN)
    assert admin is not None
    assert app.execute(RevokeStaff(staff_id=UUID(made["id"])), admin).result["revoked"] == 1
    assert app.authenticate(rotated) is None
