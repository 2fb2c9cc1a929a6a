"""The audit log guarded against rewrites the append-only triggers of api0001 let through: an insert over an
existing entry (SQLite's INSERT OR REPLACE deletes the old row without firing a DELETE trigger) and, on PostgreSQL,
TRUNCATE. What the table's owner can still do (disable a trigger, drop the table) is kept from the service by running
it under a role that may only INSERT and SELECT the log (docs/security.md, "Running the service").

Revision ID: 0005
Revises: api0003
Create Date: 2026-12-07
"""

from alembic import op

revision = "0005"
down_revision = "api0003"
branch_labels = None
depends_on = None

_APPEND_ONLY = "the audit log is append-only"  # as api0001's triggers say it


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE FUNCTION audit_log_new_entry() RETURNS trigger AS $$ BEGIN "
                   f"IF EXISTS (SELECT 1 FROM audit_log WHERE id = NEW.id) THEN RAISE EXCEPTION '{_APPEND_ONLY}'; "
                   f"END IF; RETURN NEW; END $$ LANGUAGE plpgsql")
        op.execute("CREATE TRIGGER audit_log_new_entry BEFORE INSERT ON audit_log "
                   "FOR EACH ROW EXECUTE FUNCTION audit_log_new_entry()")
        op.execute("CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
                   "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()")
    else:
        op.execute(f"CREATE TRIGGER audit_log_new_entry BEFORE INSERT ON audit_log "
                   f"WHEN EXISTS (SELECT 1 FROM audit_log WHERE id = NEW.id) "
                   f"BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_log_no_truncate ON audit_log")
        op.execute("DROP TRIGGER audit_log_new_entry ON audit_log")
        op.execute("DROP FUNCTION audit_log_new_entry()")
    else:
        op.execute("DROP TRIGGER audit_log_new_entry")
