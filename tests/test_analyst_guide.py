"""Every query of the analyst guide's SQL cookbook runs on a real warehouse, read-only, and the
guide's promises about it hold (restricted people are not in analyst_persons)."""

import re
from pathlib import Path

import duckdb

from contact_register.warehouse.build import build_warehouse
from tests.test_pipedrive_sync import run_sync

REPO = Path(__file__).resolve().parents[1]
GUIDE = REPO / "docs" / "analyst-guide.md"


def cookbook() -> list[str]:
    return re.findall(r"```sql\n(.*?)```", GUIDE.read_text(), flags=re.S)


def test_every_cookbook_query_runs_read_only(sandbox, tmp_path):
    queries = cookbook()
    assert len(queries) >= 10
    run_sync(sandbox, tmp_path / "raw")
    wh = tmp_path / "warehouse.duckdb"
    build_warehouse(tmp_path / "raw", wh)
    con = duckdb.connect(str(wh), read_only=True)
    try:
        person_id = con.execute(
            "SELECT person_id FROM analyst_persons ORDER BY source_records DESC LIMIT 1").fetchone()[0]
        answered = 0
        for sql in queries:
            # CLI dot commands and comments are not SQL statements.
            sql = "\n".join(line for line in sql.splitlines() if not line.startswith("."))
            sql = re.sub(r"--[^\n]*", "", sql)
            for statement in filter(str.strip, sql.split(";")):
                params = [person_id] * statement.count("?")
                rows = con.execute(statement, params).fetchall()
                answered += bool(rows)
        assert answered >= len(queries) - 3  # a small world has no two-year-old contacts, for one
        restricted = con.execute("SELECT count(*) FROM analyst_persons WHERE person_id IN "
                                 "(SELECT person_id FROM persons WHERE restricted)").fetchone()[0]
        assert restricted == 0
    finally:
        con.close()


def test_readme_points_to_the_guides():
    readme = (REPO / "README.md").read_text()
    for doc in ("docs/analyst-guide.md", "docs/operator-runbook.md", "docs/scaling.md"):
        assert doc in readme and (REPO / doc).exists(), doc
