"""The service's tables as migration 0003 creates them match the models, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from autograder.service import models as service_models
from gradebook.models import Base
from tests.service.conftest import open_service_db

SERVICE_TABLES = {t.__tablename__ for t in (service_models.ServiceUser, service_models.ApiToken,
                                            service_models.Invitation, service_models.WebSession,
                                            service_models.GradingJob)}


def _tables_of(diff) -> set[str]:
    names = set()
    for item in diff:
        for part in (item if isinstance(item, list) else [item]):
            for x in part[1:]:
                name = getattr(x, "name", None) if not isinstance(x, str) else x
                table = getattr(x, "table", None)
                if table is not None:
                    names.add(table.name)
                elif name in SERVICE_TABLES:
                    names.add(name)
    return names


def test_migration_0003_matches_the_models(course, db_url):
    db = open_service_db(course, db_url)
    try:
        with db.gb.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, Base.metadata)
            assert SERVICE_TABLES <= set(conn.dialect.get_table_names(conn))
    finally:
        db.close()
    assert not (_tables_of(diff) & SERVICE_TABLES), [d for d in diff]
