"""The bench's yardstick: the least a sale endpoint can do on the same machine and database.

A FastAPI app whose one route debits an account (1 UPDATE, refusing an overdraft) and records the
sale (1 INSERT) in one durable transaction, through a connection pool sized like Jindou's. No
events, no projections, no chain, no idempotency: what Jindou does per sale is measured against
this, side by side in one `jindou bench` run. Run as its own process:
`JINDOU_REFERENCE_DATABASE_URL=... python -m uvicorn infra.bench_reference:app --port P`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from infra.settings import POSTGRES_MAX_OVERFLOW, POSTGRES_POOL_SIZE, SERVER_THREADS, backend_of, persistence_env

ACCOUNTS = 1_000
OPENING_BALANCE = 10**12
URL_VARIABLE = "JINDOU_REFERENCE_DATABASE_URL"


class Sale(BaseModel):
    account_id: int
    amount: int


class Store:
    """1 UPDATE + 1 INSERT per sale, committed durably, on PostgreSQL (a pool) or SQLite (WAL)."""

    def __init__(self, url: str) -> None:
        self.postgres = backend_of(url) == "postgres"
        self.sqlite_lock = threading.Lock()
        if self.postgres:
            from psycopg_pool import ConnectionPool

            env = persistence_env(url)
            conninfo = (f"dbname={env['POSTGRES_DBNAME']} host={env['POSTGRES_HOST']} port={env['POSTGRES_PORT']} "
                        f"user={env['POSTGRES_USER']} password={env['POSTGRES_PASSWORD']}")
            self.pool = ConnectionPool(conninfo, min_size=POSTGRES_POOL_SIZE,
                                       max_size=POSTGRES_POOL_SIZE + POSTGRES_MAX_OVERFLOW, open=True)
        else:
            self.path = persistence_env(url)["SQLITE_DBNAME"]
            self.local = threading.local()
        self._create()

    @contextmanager
    def _sqlite(self) -> Iterator[sqlite3.Connection]:
        connection = getattr(self.local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
            connection.execute("PRAGMA journal_mode=WAL")
            self.local.connection = connection
        yield connection

    def _create(self) -> None:
        statements = [
            "DROP TABLE IF EXISTS bench_reference_sales",
            "DROP TABLE IF EXISTS bench_reference_accounts",
            "CREATE TABLE bench_reference_accounts (id INTEGER PRIMARY KEY, balance BIGINT NOT NULL)",
            "CREATE TABLE bench_reference_sales (account_id INTEGER NOT NULL, amount INTEGER NOT NULL)",
        ]
        rows = [(i, OPENING_BALANCE) for i in range(ACCOUNTS)]
        if self.postgres:
            with self.pool.connection() as connection:
                for statement in statements:
                    connection.execute(statement)
                with connection.cursor() as cursor:
                    cursor.executemany("INSERT INTO bench_reference_accounts VALUES (%s, %s)", rows)
        else:
            with self._sqlite() as connection:
                for statement in statements:
                    connection.execute(statement)
                connection.execute("BEGIN")
                connection.executemany("INSERT INTO bench_reference_accounts VALUES (?, ?)", rows)
                connection.execute("COMMIT")

    def sale(self, account_id: int, amount: int) -> bool:
        if self.postgres:
            with self.pool.connection() as connection, connection.transaction():
                debited = connection.execute(
                    "UPDATE bench_reference_accounts SET balance = balance - %s WHERE id = %s AND balance >= %s",
                    (amount, account_id, amount)).rowcount
                if debited:
                    connection.execute("INSERT INTO bench_reference_sales VALUES (%s, %s)", (account_id, amount))
                return bool(debited)
        with self.sqlite_lock, self._sqlite() as connection:  # SQLite has one writer anyway
            connection.execute("BEGIN IMMEDIATE")
            debited = connection.execute(
                "UPDATE bench_reference_accounts SET balance = balance - ? WHERE id = ? AND balance >= ?",
                (amount, account_id, amount)).rowcount
            if debited:
                connection.execute("INSERT INTO bench_reference_sales VALUES (?, ?)", (account_id, amount))
            connection.execute("COMMIT")
            return bool(debited)

    def close(self) -> None:
        if self.postgres:
            self.pool.close()


def create_reference_app(url: str) -> FastAPI:
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = SERVER_THREADS  # as Jindou's server
        state["store"] = Store(url)
        try:
            yield
        finally:
            state["store"].close()

    reference = FastAPI(lifespan=lifespan)

    @reference.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @reference.post("/sale", status_code=201)
    def sale(body: Sale) -> dict[str, int]:
        if not state["store"].sale(body.account_id % ACCOUNTS, body.amount):
            raise HTTPException(409, "insufficient_funds")
        return {"account_id": body.account_id, "amount": body.amount}

    return reference


def __getattr__(name: str) -> Any:  # `uvicorn infra.bench_reference:app` builds it from the environment
    if name == "app":
        return create_reference_app(os.environ[URL_VARIABLE])
    raise AttributeError(name)
