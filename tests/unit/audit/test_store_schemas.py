"""Worker processes start together on a new database, and each creates every store's tables.

On SQLite, a store that checked for its table and then created it, in a plain transaction, lost
when another process committed in between: its read snapshot had gone stale, and SQLite refuses
to upgrade a stale snapshot to a write ("database is locked", at once, whatever the busy
timeout). One of two workers then failed start-up and took the server down with it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from riskscreen.audit.chain import AuditStore
from riskscreen.audit.db import connect_sqlite
from riskscreen.audit.keys import KeyStore
from riskscreen.audit.switch import ScoringSwitchStore


def test_each_store_creates_its_table_while_another_process_commits(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    audit = AuditStore.from_url(url)
    other = connect_sqlite(audit.engine)  # another worker, in the middle of its own start-up
    try:
        stores = (audit, KeyStore(audit.engine), ScoringSwitchStore(audit.engine))
        for n, store in enumerate(stores):
            other.execute("BEGIN IMMEDIATE")
            other.execute(f"CREATE TABLE other_{n} (x)")
            failures: list[BaseException] = []

            def create(
                create_schema: Callable[[], None] = store.create_schema,
                failures: list[BaseException] = failures,
            ) -> None:
                try:
                    create_schema()
                except BaseException as exc:
                    failures.append(exc)

            starting = threading.Thread(target=create)
            starting.start()
            time.sleep(0.2)  # it has looked for its table by now, and waits to write
            other.execute("COMMIT")
            starting.join()
            assert failures == [], (type(store).__name__, failures)
        assert ScoringSwitchStore(audit.engine).state() == (True, None)
    finally:
        other.close()
        audit.close()
