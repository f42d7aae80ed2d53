"""Hypothesis drives sign-ins, rotations, new tokens from staff and revocations against one
holder and one staff member, keeps a model of which tokens and sign-in codes must be alive, and
after every step checks that exactly those authenticate and that the keyring lists exactly the
live credentials (never more than LIVE_CREDENTIALS_MAX)."""

from __future__ import annotations

from uuid import UUID

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from domain.community import Credential
from domain.credentialing import (
    STRANGER,
    IssueAccountSignInCode,
    IssueAccountToken,
    IssueStaffSignInCode,
    IssueStaffToken,
    RevokeStaff,
    RotateToken,
    SignIn,
)
from domain.credentials import LIVE_CREDENTIALS_MAX, Keyring, hash_token
from domain.errors import InvalidSignInCode
from domain.people import OpenAccount, RegisterStaff
from infra.settings import Settings
from infra.wiring import build_services
from tests.conftest import ADMIN_TOKEN
from tests.support import new_app_community

PRINCIPALS = ("holder", "clerk")
principals = st.sampled_from(PRINCIPALS)


class CredentialMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.services = build_services(Settings(database_url="memory://", admin_token=ADMIN_TOKEN))
        self.community = new_app_community(self.services)
        app = self.services.app
        opening = OpenAccount(community_id=self.community.id, kind="beneficiary", display_name="张阿姨")
        opened = app.execute(opening, self.community.staff).result
        registering = RegisterStaff(community_id=self.community.id, display_name="网格员", role="staff")
        registered = app.execute(registering, self.community.admin).result
        self.ids = {"holder": UUID(opened["id"]), "clerk": UUID(registered["id"])}
        self.live: dict[str, list[str]] = {"holder": [opened["token"]], "clerk": [registered["token"]]}
        self.dead: list[str] = []
        self.codes: dict[str, list[str]] = {"holder": [], "clerk": []}  # unused, still valid
        self.dead_codes: list[str] = []

    def teardown(self) -> None:
        self.services.close()

    def _add(self, who: str, token: str) -> None:
        self.live[who].append(token)
        if len(self.live[who]) > LIVE_CREDENTIALS_MAX:
            self.dead.append(self.live[who].pop(0))

    def _reset(self, who: str) -> None:
        self.dead += self.live[who]
        self.dead_codes += self.codes[who]
        self.live[who], self.codes[who] = [], []

    @rule(who=principals)
    def hand_out_a_sign_in_code(self, who: str) -> None:
        app, staff = self.services.app, self.community.staff
        if who == "holder":
            code = app.execute(IssueAccountSignInCode(account_id=self.ids[who]), staff).result["code"]
        else:
            code = app.execute(IssueStaffSignInCode(staff_id=self.ids[who]), self.community.admin).result["code"]
        self.codes[who].append(code)

    @precondition(lambda self: any(self.codes.values()))
    @rule(data=st.data())
    def sign_in(self, data: st.DataObject) -> None:
        who = data.draw(st.sampled_from([w for w in PRINCIPALS if self.codes[w]]))
        code = self.codes[who].pop(data.draw(st.integers(0, len(self.codes[who]) - 1)))
        self._add(who, self.services.app.execute(SignIn(code), STRANGER).result["token"])
        self.dead_codes.append(code)

    @precondition(lambda self: self.dead_codes)
    @rule(data=st.data())
    def a_dead_code_is_refused(self, data: st.DataObject) -> None:
        code = data.draw(st.sampled_from(self.dead_codes))
        try:
            self.services.app.execute(SignIn(code), STRANGER)
        except InvalidSignInCode:
            return
        raise AssertionError("a used or reset sign-in code signed in")

    @precondition(lambda self: any(self.live.values()))
    @rule(data=st.data())
    def rotate(self, data: st.DataObject) -> None:
        who = data.draw(st.sampled_from([w for w in PRINCIPALS if self.live[w]]))
        old = data.draw(st.sampled_from(self.live[who]))
        actor = self.services.app.authenticate(old)
        assert actor is not None
        new = self.services.app.execute(RotateToken(), actor).result["token"]
        self.live[who].remove(old)
        self.dead.append(old)
        self._add(who, new)

    @rule(who=principals)
    def new_token_from_staff(self, who: str) -> None:
        app = self.services.app
        if who == "holder":
            token = app.execute(IssueAccountToken(account_id=self.ids[who]), self.community.staff).result["token"]
        else:
            token = app.execute(IssueStaffToken(staff_id=self.ids[who]), self.community.admin).result["token"]
        self._reset(who)
        self.live[who].append(token)

    @rule()
    def revoke_the_clerk(self) -> None:
        revoking = RevokeStaff(staff_id=self.ids["clerk"])
        revoked = self.services.app.execute(revoking, self.community.admin).result["revoked"]
        assert revoked == len(self.live["clerk"])
        self._reset("clerk")

    @invariant()
    def exactly_the_live_tokens_authenticate(self) -> None:
        app = self.services.app
        for who, tokens in self.live.items():
            for token in tokens:
                actor = app.authenticate(token)
                assert actor is not None and actor.principal_id == self.ids[who], who
            keyring = app.repository.get(Keyring.id_for(self.ids[who]))
            assert keyring.credential_ids == [Credential.id_for(hash_token(t)) for t in tokens]
            assert len(tokens) <= LIVE_CREDENTIALS_MAX
        assert all(app.authenticate(token) is None for token in self.dead)


CredentialMachine.TestCase.settings = settings(
    max_examples=25, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
test_credentials_follow_the_model = CredentialMachine.TestCase
